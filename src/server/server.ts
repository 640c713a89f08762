/**
 * A ChatOS node: the client listener, the bridge listener (cluster mode), the
 * presence store, and orderly shutdown. `startServer` is what `deno task
 * serve` runs and what the tests start in-process. It builds each part with
 * what that part uses, and nothing else.
 */
import { MemoryPresence } from "../presence/memory.ts";
import type { NodeUsers, Presence } from "../presence/presence.ts";
import { LocalUsers } from "./local_users.ts";
import { Logger, silentLogger } from "../lib/log.ts";
import { withDeadline } from "../lib/async.ts";
import { closeQuietly, errorMessage } from "../lib/errors.ts";
import { WarnThrottle } from "../lib/rate.ts";
import { defaultConfig, type ServerConfig } from "./config.ts";
import { Metrics } from "./metrics.ts";
import { type AdminServer, startAdmin } from "./admin.ts";
import { acceptEach } from "./listen.ts";
import { bridgeArrivals, ClientPipeline, tuneTcp } from "./accept.ts";
import { serveConnection } from "./chat/connection.ts";
import { identifier } from "./net/client_address.ts";
import { parseCidrList } from "./net/cidr.ts";
import { ChatSession } from "./chat/session.ts";
import type { LoginTicket } from "./limits/admission.ts";
import { type OutboundQueue, QueueBudget } from "./chat/outbound.ts";
import { defaultFdBudget, FdBudget, processFdLimit } from "./limits/fd_budget.ts";
import { Admission } from "./limits/admission.ts";
import { HandshakeAborts } from "./links/aborts.ts";
import { LinkGuard } from "./links/guard.ts";
import { LinkBroker } from "./links/broker.ts";

/** What may be inspected of a running node (tests, embedding). */
export interface NodeView {
  readonly metrics: Metrics;
  /** The users logged in on this node. */
  readonly users: LocalUsers<ChatSession>;
  /** Every chat connection's outbound queue. */
  readonly outbound: ReadonlySet<OutboundQueue>;
}

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  /** The node-to-node bridge port (cluster mode), else -1. */
  readonly bridgePort: number;
  /** The admin HTTP port, or -1 when off. */
  readonly adminPort: number;
  readonly context: NodeView;
  /** Open client connections, chat and link ends alike. */
  readonly connections: number;
  /** Stops accepting, waits up to `drainMs` for queued output, releases presence, closes everything. */
  close(drainMs?: number): Promise<void>;
}

export interface ServerDeps {
  /** A store to use instead of the one the config names (tests), made for the node's users. */
  presence?: (users: NodeUsers) => Presence | Promise<Presence>;
  logger?: Logger;
}

async function makePresence(
  config: ServerConfig,
  log: Logger,
  bridge: string,
  users: NodeUsers,
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
  }, users);
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
  const users = new LocalUsers<ChatSession>(log);
  const outbound = new Set<OutboundQueue>();
  const queueBudget = new QueueBudget(config.maxQueuedBytesTotal);
  const fdLimit = config.maxFds ? null : processFdLimit();
  const budget = new FdBudget(config.maxFds || defaultFdBudget(fdLimit));
  if (!config.maxFds && fdLimit === null) {
    // Deno reads /proc only with --allow-all (measured: 2.9): say what the budget is instead.
    log.warn("process fd limit unknown: set --max-fds below `ulimit -n`", { maxFds: budget.max });
  }
  const admission = new Admission(config, budget, metrics);
  const warn = new WarnThrottle(log, config.warnIntervalMs);
  let draining = false;

  const identify = identifier(proxyPolicy(config)); // throws on a bad list, before listening
  const listener = bind(
    "port",
    config.host,
    config.port,
    () => Deno.listen({ hostname: config.host, port: config.port, transport: "tcp" }),
  );
  let bridgeListener: Deno.TcpListener | null = null;
  let bridgeAddress = "";
  if (config.presence === "redis") {
    try {
      bridgeListener = bind(
        "bridge-port",
        config.bridgeHost,
        config.bridgePort,
        () => Deno.listen({ hostname: config.bridgeHost, port: config.bridgePort }),
      );
    } catch (e) {
      listener.close();
      throw e;
    }
    const advertise = config.advertiseHost || Deno.hostname();
    bridgeAddress = `${advertise}:${bridgeListener.addr.port}`;
  }

  let presence: Presence;
  try {
    presence = await (deps.presence?.(users) ?? makePresence(config, log, bridgeAddress, users));
  } catch (e) {
    listener.close();
    bridgeListener?.close();
    throw e;
  }

  const { directory, handshakes, relay } = presence;
  const aborts = new HandshakeAborts(handshakes, users, relay, log);
  const guard = new LinkGuard({ users, directory, handshakes }, aborts, config, log, warn, metrics);
  const links = new LinkBroker({
    nodeId: presence.nodeId,
    handshakes,
    users,
    relay,
    aborts,
    guard,
    log,
    warn,
    metrics,
    budget,
    limits: config,
    bridge: { address: bridgeAddress, secret: config.clusterSecret },
  });
  const sessionDeps = {
    users,
    directory,
    handshakes,
    relay,
    aborts,
    log,
    warn,
    metrics,
    limits: config,
    draining: () => draining,
    maxSessionsPerAddress: config.maxSessionsPerAddress,
  };
  const connectionDeps = {
    limits: config,
    log,
    warn,
    metrics,
    links,
    outbound,
    queueBudget,
    // Every node's users, not only this node's: an SMA reaches them all (docs/PROTOCOL.md).
    fanOut: () => Math.max(1, users.size + relay.remoteUsers - 1),
    newSession: (
      out: OutboundQueue,
      address: string,
      close: (reason: string) => void,
      ticket: LoginTicket,
    ) => new ChatSession(sessionDeps, out, address, close, ticket),
  };
  metrics.gauges.connections = () => admission.open;
  metrics.gauges.fd_budget_used = () => budget.used;
  metrics.gauges.fd_budget_max = () => budget.max;
  metrics.gauges.outbound_charged_bytes = () => queueBudget.used;
  metrics.gauges.sessions = () => users.size;
  metrics.gauges.links_pending = () => links.parkedCount;
  metrics.gauges.link_ends_active = () => links.activeEnds;

  const isDraining = () => draining;
  const acceptDeps = { draining: isDraining, warn, metrics };
  const clients = new ClientPipeline({
    admission,
    budget,
    metrics,
    warn,
    identify,
    serve: (conn, ticket, initial, onClose) =>
      serveConnection(conn, connectionDeps, ticket, initial, onClose),
  });
  const acceptLoop = acceptEach(listener, acceptDeps, (conn) => {
    tuneTcp(conn);
    clients.take(conn);
  });
  const bridgeLoop = bridgeListener &&
    acceptEach(bridgeListener, acceptDeps, bridgeArrivals({ budget, metrics, warn, log, links }));

  let admin: AdminServer | null = null;
  if (config.adminPort >= 0) {
    try {
      admin = bind(
        "admin-port",
        config.adminHost,
        config.adminPort,
        () =>
          startAdmin(config.adminHost, config.adminPort, {
            metrics,
            draining: isDraining,
            health: () => presence.health,
            mailboxDepths: () => [...users.values()].map((s) => s.mailbox.depth),
            queuedBytes: () => queuedBytes(outbound),
          }, { ...acceptDeps, budget }),
      );
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
    admin: admin ? `http://${config.adminHost}:${admin.port}/metrics` : undefined,
    maxFds: budget.max,
  });

  let closing: Promise<void> | null = null;
  return {
    hostname: addr.hostname,
    port: addr.port,
    bridgePort: bridgeListener ? bridgeListener.addr.port : -1,
    adminPort: admin ? admin.port : -1,
    context: { metrics, users, outbound },
    get connections() {
      return admission.open;
    },
    close(drainMs = 0) {
      closing ??= (async () => {
        draining = true;
        closeQuietly(listener);
        closeQuietly(bridgeListener);
        await acceptLoop;
        await bridgeLoop;
        // Release every reservation and the lease first: other nodes stop
        // routing to us (their senders get ERROR 4, not a lost message) and
        // the pseudos can be taken elsewhere at once.
        await presence.close().catch((e) =>
          log.warn("presence close failed", { error: errorMessage(e) })
        );
        // Then let what was already acknowledged reach its readers.
        if (drainMs > 0) await drainOutput(outbound, drainMs, log);
        links.closeAll();
        await clients.closeAll();
        await admin?.shutdown();
        log.info("stopped");
      })();
      return closing;
    },
  };
}

/** Binds with `open`; an address in use is reported with the flag that chose it. */
function bind<T>(flag: string, host: string, port: number, open: () => T): T {
  try {
    return open();
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(`--${flag} ${port}: ${host}:${port} is already in use`);
    }
    // A name that does not resolve, or an address not on this machine: the host flag's fault.
    if (e instanceof Deno.errors.AddrNotAvailable || /lookup address/.test(errorMessage(e))) {
      const hostFlag = flag.replace(/port$/, "host");
      throw new Error(`--${hostFlag} ${host}: cannot listen there: ${errorMessage(e)}`);
    }
    throw e;
  }
}

function queuedBytes(outbound: ReadonlySet<OutboundQueue>): number {
  let n = 0;
  for (const q of outbound) n += q.pending;
  return n;
}

/** Waits until every connection's queued output is written, or `ms` passes (graceful drain). */
async function drainOutput(outbound: Set<OutboundQueue>, ms: number, log: Logger): Promise<void> {
  const all = Promise.all([...outbound].map((q) => q.drained()));
  // Past the deadline the output left is reported below, not thrown.
  await withDeadline(all, ms, () => new Error("drain deadline")).catch(() => {});
  const left = queuedBytes(outbound);
  if (left > 0) log.warn("drain deadline passed with output queued", { bytes: left });
}

/** The PROXY protocol policy of the client listener, or null when it is off. */
function proxyPolicy(config: ServerConfig) {
  if (!config.proxyProtocol) return null;
  const trusted = parseCidrList(config.proxyTrusted);
  if (!trusted.ok) throw new TypeError(`--proxy-trusted: ${trusted.reason}`);
  return { trusted: trusted.list, headerTimeoutMs: config.proxyHeaderTimeoutMs };
}
