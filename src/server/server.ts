/**
 * A ChatOS node: the client listener, the bridge listener (cluster mode), the
 * presence store, and orderly shutdown. `startServer` is what `deno task
 * serve` runs and what the tests start in-process.
 */
import { MemoryPresence } from "../presence/memory.ts";
import type { Presence } from "../presence/presence.ts";
import { defaultConfig, type ServerConfig } from "./config.ts";
import type { ServerContext } from "./context.ts";
import { rejectConnection, serveConnection } from "./connection.ts";
import { Handshakes } from "./handshakes.ts";
import { LinkBroker } from "./links.ts";
import { readGreeting } from "./bridge.ts";
import { writeAll } from "./link_end.ts";
import { Logger, silentLogger } from "../lib/log.ts";
import { Metrics } from "./metrics.ts";
import { startAdmin } from "./admin.ts";

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  /** The node-to-node bridge port (cluster mode), else -1. */
  readonly bridgePort: number;
  /** The admin HTTP port, or -1 when off. */
  readonly adminPort: number;
  readonly context: ServerContext;
  /** Open client connections, chat and link ends alike. */
  readonly connections: number;
  /** Stops accepting, waits up to `drainMs` for queued output, releases presence, closes everything. */
  close(drainMs?: number): Promise<void>;
}

export interface ServerDeps {
  /** A store to use instead of the one the config names (tests). */
  presence?: Presence;
  logger?: Logger;
}

async function makePresence(
  config: ServerConfig,
  log: Logger,
  bridge: string,
  onLost: (pseudo: string) => void,
): Promise<Presence> {
  if (config.presence === "memory") return new MemoryPresence({ nodeId: config.nodeId || "local" });
  // Loaded only in cluster mode, so a single node never needs the Redis client.
  const { createRedisPresence, redisTarget } = await import("../presence/redis.ts");
  const target = redisTarget(config);
  if (typeof target === "string") throw new Error(target); // parseConfig refuses it first
  return await createRedisPresence({
    target,
    nodeId: config.nodeId,
    bridge,
    clientAddress: `${config.advertiseHost || Deno.hostname()}:${config.port}`,
    log: (level, msg, fields) => log.log(level, msg, fields),
    onLost,
  });
}

export async function startServer(
  partial: Partial<ServerConfig> = {},
  deps: ServerDeps = {},
): Promise<RunningServer> {
  const config: ServerConfig = { ...defaultConfig(), ...partial };
  if (!config.nodeId) config.nodeId = crypto.randomUUID().slice(0, 8);
  const log = deps.logger ??
    (partial.logLevel ? new Logger(config.logLevel, { node: config.nodeId }) : silentLogger);
  const metrics = new Metrics();

  const listener = Deno.listen({ hostname: config.host, port: config.port, transport: "tcp" });
  let bridgeListener: Deno.TcpListener | null = null;
  let bridgeAddress = "";
  if (config.presence === "redis") {
    bridgeListener = Deno.listen({ hostname: config.bridgeHost, port: config.bridgePort });
    const advertise = config.advertiseHost || Deno.hostname();
    bridgeAddress = `${advertise}:${bridgeListener.addr.port}`;
  }

  let presence: Presence;
  try {
    presence = deps.presence ?? await makePresence(config, log, bridgeAddress, (pseudo) => {
      // After a Redis outage another node holds this pseudo: ours must go.
      ctx.sessions.get(pseudo)?.evict("pseudo taken by another node during a Redis outage");
    });
  } catch (e) {
    listener.close();
    bridgeListener?.close();
    throw e;
  }

  // The context and the broker refer to each other; the broker reads it lazily.
  const links = new LinkBroker(() => ctx);
  links.bridgeAddress = bridgeAddress;
  links.secret = config.clusterSecret;
  const handshakes = new Handshakes(presence, config, log, metrics, (k) => links.dropParked(k));
  const ctx: ServerContext = {
    config,
    presence,
    log,
    metrics,
    handshakes,
    links,
    sessions: new Map(),
    draining: false,
    outbound: new Set(),
  };
  metrics.gauges.connections = () => open.size;
  metrics.gauges.sessions = () => ctx.sessions.size;
  metrics.gauges.links_pending = () => links.parkedCount;
  metrics.gauges.link_ends_active = () => links.activeEnds;

  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();

  const acceptLoop = acceptEach(listener, ctx, (conn) => {
    metrics.connectionsOpened++;
    if (open.size >= config.maxConnections) {
      rejectConnection(conn, ctx, `over --max-connections ${config.maxConnections}`);
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch { /* closed already */ }
    open.add(conn);
    const h = serveConnection(conn, ctx, () => open.delete(conn));
    handlers.add(h);
    void h.finally(() => handlers.delete(h));
  });

  const bridgeLoop = bridgeListener &&
    acceptEach(bridgeListener, ctx, (conn) => {
      void serveBridge(conn, ctx, links).catch((e) =>
        log.warn("bridge connection failed", { error: String(e) })
      );
    });

  let admin: Deno.HttpServer<Deno.NetAddr> | null = null;
  if (config.adminPort >= 0) {
    try {
      admin = startAdmin(ctx);
    } catch (e) {
      listener.close();
      bridgeListener?.close();
      await presence.close();
      throw e;
    }
  }

  const addr = listener.addr as Deno.NetAddr;
  log.info("listening", {
    host: addr.hostname,
    port: addr.port,
    presence: config.presence,
    bridge: bridgeAddress || undefined,
  });

  let closing: Promise<void> | null = null;
  return {
    hostname: addr.hostname,
    port: addr.port,
    bridgePort: bridgeListener ? bridgeListener.addr.port : -1,
    adminPort: admin ? admin.addr.port : -1,
    context: ctx,
    get connections() {
      return open.size;
    },
    close(drainMs = 0) {
      closing ??= (async () => {
        ctx.draining = true;
        try {
          listener.close();
        } catch { /* closed */ }
        try {
          bridgeListener?.close();
        } catch { /* closed */ }
        await acceptLoop;
        await bridgeLoop;
        // Release every reservation and the lease first: other nodes stop
        // routing to us (their senders get ERROR 4, not a lost message) and
        // the pseudos can be taken elsewhere at once.
        await presence.close().catch((e) =>
          log.warn("presence close failed", { error: String(e) })
        );
        // Then let what was already acknowledged reach its readers.
        if (drainMs > 0) await drainOutput(ctx, drainMs);
        links.closeAll();
        for (const c of open) {
          try {
            c.close();
          } catch { /* closed */ }
        }
        await Promise.allSettled([...handlers]);
        await admin?.shutdown();
        log.info("stopped");
      })();
      return closing;
    },
  };
}

/**
 * Accepts until the listener is closed. A failed accept (a peer that reset
 * before we got to it, or no file descriptors left) is logged and skipped: it
 * must never stop the node from accepting.
 */
async function acceptEach(
  listener: Deno.Listener,
  ctx: ServerContext,
  onConn: (conn: Deno.TcpConn) => void,
): Promise<void> {
  while (true) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (e) {
      if (
        ctx.draining || e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted
      ) {
        return;
      }
      ctx.log.warn("accept failed", { error: String(e) });
      // Out of descriptors: give closing connections a moment instead of spinning.
      if (String(e).includes("Too many open files")) await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    onConn(conn as Deno.TcpConn);
  }
}

/** Waits until every connection's queued output is written, or `ms` passes (graceful drain). */
async function drainOutput(ctx: ServerContext, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  const all = Promise.all([...ctx.outbound].map((q) => q.drained()));
  await Promise.race([all, deadline]);
  clearTimeout(timer);
  const left = [...ctx.outbound].reduce((n, q) => n + q.pending, 0);
  if (left > 0) ctx.log.warn("drain deadline passed with output queued", { bytes: left });
}

async function serveBridge(conn: Deno.Conn, ctx: ServerContext, links: LinkBroker): Promise<void> {
  const greeting = await readGreeting(conn, ctx.config.clusterSecret).catch(() => null);
  if (!greeting) {
    ctx.log.warn("bridge greeting refused", {
      address: (conn.remoteAddr as Deno.NetAddr).hostname,
    });
    try {
      conn.close();
    } catch { /* closed */ }
    return;
  }
  const parked = links.takeForBridge(greeting.token);
  if (!parked) {
    await writeAll(conn, Uint8Array.of(0)).catch(() => {});
    conn.close();
    return;
  }
  try {
    await writeAll(conn, Uint8Array.of(1));
  } catch (e) {
    // The dialing node is gone: so is this link. Close B's end rather than leave it parked.
    parked.close();
    conn.close();
    throw e;
  }
  await links.joinBridge(parked, conn, greeting.initial);
}
