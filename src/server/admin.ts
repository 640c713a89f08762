/**
 * The admin HTTP endpoint (off unless --admin-port is set; loopback by
 * default): /metrics in Prometheus text format, /healthz (the process
 * answers) and /readyz (accepting logins, and in Redis mode Redis reachable
 * with the lease held).
 */
import type { StoreHealth } from "../presence/presence.ts";
import type { Metrics } from "./metrics.ts";

/** What the admin endpoint reads of its node, at request time. */
export interface AdminView {
  metrics: Metrics;
  draining(): boolean;
  /** The presence store's health, if it has any to tell. */
  health(): StoreHealth | undefined;
  /** The mailbox depth of each logged-in session. */
  mailboxDepths(): Iterable<number>;
  /** Output bytes queued for every chat connection together. */
  queuedBytes(): number;
}

function readiness(view: AdminView): { ready: boolean; reason: string } {
  if (view.draining()) return { ready: false, reason: "draining" };
  if (view.health()?.ready === false) {
    return { ready: false, reason: "presence store unavailable" };
  }
  return { ready: true, reason: "ok" };
}

function renderMetrics(view: AdminView): string {
  let depthMax = 0, depthTotal = 0;
  for (const d of view.mailboxDepths()) {
    depthTotal += d;
    if (d > depthMax) depthMax = d;
  }
  const extra: Record<string, number> = {
    mailbox_depth_max: depthMax,
    mailbox_depth_total: depthTotal,
    outbound_queued_bytes: view.queuedBytes(),
    ready: readiness(view).ready ? 1 : 0,
  };
  const stats = view.health()?.stats;
  let text = view.metrics.render(extra);
  if (stats) {
    text += [
      "# HELP chatos_redis_publishes_total frames published to Redis",
      "# TYPE chatos_redis_publishes_total counter",
      `chatos_redis_publishes_total ${stats.publishes}`,
      "# HELP chatos_redis_receives_total frames received from Redis",
      "# TYPE chatos_redis_receives_total counter",
      `chatos_redis_receives_total ${stats.receives}`,
      "# HELP chatos_redis_reconnects_total Redis connections re-established",
      "# TYPE chatos_redis_reconnects_total counter",
      `chatos_redis_reconnects_total ${stats.reconnects}`,
      "# HELP chatos_redis_rtt_seconds last pub/sub round trip of the liveness ping",
      "# TYPE chatos_redis_rtt_seconds gauge",
      `chatos_redis_rtt_seconds ${stats.lastRttMs / 1000}`,
      "",
    ].join("\n");
  }
  return text;
}

export function startAdmin(
  hostname: string,
  port: number,
  view: AdminView,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname,
    port,
    onListen: () => {},
  }, (req) => {
    const path = new URL(req.url).pathname;
    switch (path) {
      case "/metrics":
        return new Response(renderMetrics(view), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      case "/healthz":
        return new Response("ok\n");
      case "/readyz": {
        const r = readiness(view);
        return new Response(r.reason + "\n", { status: r.ready ? 200 : 503 });
      }
      default:
        return new Response("not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    }
  });
}
