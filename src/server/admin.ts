/**
 * The admin HTTP endpoint (off unless --admin-port is set; loopback by
 * default): /metrics in Prometheus text format, /healthz (the process
 * answers) and /readyz (accepting logins, and in Redis mode Redis reachable
 * with the lease held).
 *
 * A minimal HTTP/1.1 responder on the node's own accept loop rather than
 * Deno.serve: each request takes a descriptor from the node's budget, and
 * running out of descriptors makes it back off, where Deno.serve's accept
 * error ended the process. One request per connection, then close.
 */
import type { StoreHealth } from "../presence/presence.ts";
import { withDeadline, writeAll } from "../lib/async.ts";
import { closeQuietly } from "../lib/errors.ts";
import type { Metrics } from "./metrics.ts";
import { renderRelayStats } from "./relay_metrics.ts";
import type { FdBudget } from "./limits/fd_budget.ts";
import { type AcceptDeps, acceptEach } from "./listen.ts";

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

const MAX_REQUEST_HEAD = 8 * 1024;
const REQUEST_TIMEOUT_MS = 5000;

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
  if (stats) text += renderRelayStats(stats).join("\n") + "\n";
  return text;
}

interface Reply {
  status: number;
  body: string;
  type?: string;
}

function route(method: string, path: string, view: AdminView): Reply {
  if (method !== "GET" && method !== "HEAD") return { status: 405, body: "GET only\n" };
  switch (path.split("?")[0]) {
    case "/metrics":
      return { status: 200, body: renderMetrics(view), type: "text/plain; version=0.0.4" };
    case "/healthz":
      return { status: 200, body: "ok\n" };
    case "/readyz": {
      const r = readiness(view);
      return { status: r.ready ? 200 : 503, body: r.reason + "\n" };
    }
    default:
      return { status: 404, body: "not found: try /metrics, /healthz or /readyz\n" };
  }
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  503: "Service Unavailable",
};

/** Reads the request head (up to the blank line); null if it is too long or never ends. */
async function readHead(conn: Deno.Conn): Promise<string | null> {
  const buf = new Uint8Array(MAX_REQUEST_HEAD);
  let used = 0;
  const text = new TextDecoder();
  while (used < buf.length) {
    const n = await conn.read(buf.subarray(used));
    if (n === null) return null;
    used += n;
    const head = text.decode(buf.subarray(0, used));
    if (head.includes("\r\n\r\n") || head.includes("\n\n")) return head;
  }
  return null;
}

/**
 * Reads one request and writes its reply, all within `deadlineMs`: a client
 * that never sends its head, or never reads the reply, is closed then (its
 * descriptor is in the node's budget, so it must not keep it).
 */
export function serveRequest(
  conn: Deno.Conn,
  view: AdminView,
  deadlineMs = REQUEST_TIMEOUT_MS,
): Promise<void> {
  return withDeadline(exchange(conn, view), deadlineMs, () => {
    closeQuietly(conn);
    return new Error("admin request timed out");
  });
}

async function exchange(conn: Deno.Conn, view: AdminView): Promise<void> {
  const head = await readHead(conn);
  const [method = "", path = ""] = (head ?? "").split("\r\n")[0].split(" ");
  const reply = head === null ? { status: 400, body: "bad request\n" } : route(method, path, view);
  const body = method === "HEAD" ? "" : reply.body;
  const bodyBytes = new TextEncoder().encode(body);
  const response = `HTTP/1.1 ${reply.status} ${STATUS_TEXT[reply.status]}\r\n` +
    `content-type: ${reply.type ?? "text/plain; charset=utf-8"}\r\n` +
    `content-length: ${bodyBytes.length}\r\nconnection: close\r\n\r\n`;
  await writeAll(conn, new TextEncoder().encode(response + body));
}

export interface AdminServer {
  readonly port: number;
  shutdown(): Promise<void>;
}

export function startAdmin(
  hostname: string,
  port: number,
  view: AdminView,
  deps: AcceptDeps & { budget: FdBudget },
): AdminServer {
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  const open = new Set<Deno.Conn>();
  const requests = new Set<Promise<void>>();
  const loop = acceptEach(listener, deps, (conn) => {
    const slot = deps.budget.tryAcquire("admin");
    if (!slot) {
      deps.metrics.refuse("fd_budget");
      closeQuietly(conn);
      return;
    }
    open.add(conn);
    const p = serveRequest(conn, view)
      .catch(() => {}) // a client that went away or timed out: nothing to answer
      .finally(() => {
        open.delete(conn);
        closeQuietly(conn);
        slot.release();
        requests.delete(p);
      });
    requests.add(p);
  });
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async shutdown() {
      closeQuietly(listener);
      await loop;
      for (const c of open) closeQuietly(c);
      await Promise.allSettled([...requests]);
    },
  };
}
