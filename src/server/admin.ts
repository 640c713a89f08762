/**
 * The admin HTTP endpoint (off unless --admin-port is set; loopback by
 * default): /metrics in Prometheus text format, /healthz (the process
 * answers) and /readyz (accepting logins, and in Redis mode Redis reachable
 * with the lease held).
 */
import type { ServerContext } from "./context.ts";

export function readiness(ctx: ServerContext): { ready: boolean; reason: string } {
  if (ctx.draining) return { ready: false, reason: "draining" };
  if (ctx.presence.health?.ready === false) {
    return { ready: false, reason: "presence store unavailable" };
  }
  return { ready: true, reason: "ok" };
}

export function renderMetrics(ctx: ServerContext): string {
  let depthMax = 0, depthTotal = 0;
  for (const s of ctx.sessions.values()) {
    const d = s.mailbox.depth;
    depthTotal += d;
    if (d > depthMax) depthMax = d;
  }
  const extra: Record<string, number> = {
    mailbox_depth_max: depthMax,
    mailbox_depth_total: depthTotal,
    outbound_queued_bytes: [...ctx.outbound].reduce((n, q) => n + q.pending, 0),
    ready: readiness(ctx).ready ? 1 : 0,
  };
  const stats = ctx.presence.health?.stats;
  let text = ctx.metrics.render(extra);
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

export function startAdmin(ctx: ServerContext): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: ctx.config.adminHost,
    port: ctx.config.adminPort,
    onListen: () => {},
  }, (req) => {
    const path = new URL(req.url).pathname;
    switch (path) {
      case "/metrics":
        return new Response(renderMetrics(ctx), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      case "/healthz":
        return new Response("ok\n");
      case "/readyz": {
        const r = readiness(ctx);
        return new Response(r.reason + "\n", { status: r.ready ? 200 : 503 });
      }
      default:
        return new Response("not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    }
  });
}
