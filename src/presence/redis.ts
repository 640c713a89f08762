/**
 * RedisPresence: the Presence store for a cluster of ChatOS nodes sharing one
 * Redis. Schema and operations: docs/REDIS.md.
 *
 * Three connections per node:
 * - `cmd`: request/response commands (reserve, release, handshakes, strikes,
 *   heartbeat), no auto-pipelining so each call has the lowest latency;
 * - `pub`: auto-pipelined, for everything that PUBLISHes (send, broadcast,
 *   liveness pings); one connection, so frames from one sender keep their order;
 * - `sub`: subscribed to this node's channel and the broadcast channel,
 *   reading binary payloads (`messageBuffer`).
 *
 * Failure model: no command waits in an offline queue or longer than
 * `commandTimeoutMs`; every failure rejects with PresenceUnavailable. After a
 * reconnect the lease and every local reservation are written again, since
 * Redis may have come back empty.
 */
import { Buffer } from "node:buffer";
import { Redis, type RedisOptions } from "ioredis";
import { setImmediate } from "node:timers";
import type { HandshakeKey } from "../protocol/frames.ts";
import { LocalUsers } from "./local_users.ts";
import type { LogFn } from "../lib/log.ts";
import {
  type Inbox,
  type LinkEndpoint,
  type Presence,
  PresenceUnavailable,
  type RelayStats,
  type ReserveResult,
  type StoreHealth,
} from "./presence.ts";
import { channels, keys, NODE_ID_PATTERN, PREFIX } from "./redis/schema.ts";
import { type ScriptName, scripts } from "./redis/scripts.ts";

export interface RedisPresenceOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** This node's id: 1–64 of [A-Za-z0-9_.-] (it is part of key names). */
  nodeId: string;
  /** This node's bridge address "host:port", stored in the lease. */
  bridge: string;
  /** The address clients connect to, for operators (stored in the lease). */
  clientAddress?: string;
  /** How long the lease lives without a heartbeat. Default 3000. */
  leaseMs?: number;
  /** Heartbeat period. Default 1000. */
  heartbeatMs?: number;
  /** Longest wait for any one Redis command. Default 1000. */
  commandTimeoutMs?: number;
  /**
   * Longest wait for Redis at start-up before createRedisPresence rejects. Default 5000. If
   * another process holds this node id's lease, start-up waits up to leaseMs + 500 ms for it to
   * lapse (a crashed predecessor) before failing.
   */
  connectTimeoutMs?: number;
  /** Liveness ping period on the pub/sub path. Default 1000. */
  probeIntervalMs?: number;
  /** A subscriber that received no ping for this long is reconnected. Default 3000. */
  probeTimeoutMs?: number;
  log?: LogFn;
  /**
   * Called when, after Redis trouble, a pseudo this node still serves turned
   * out to be held by another live node. The local binding is left in place;
   * the server should end that user's session.
   */
  onLost?: (pseudo: string) => void;
}

type Kind = "cmd" | "pub" | "sub";
type ScriptFn = (...args: (string | Buffer | number)[]) => Promise<unknown>;

const CHUNK = 500;
const PRUNE_EVERY = 5;
const PRUNE_BATCH = 1000;

const defaultLog: LogFn = (level, msg, fields) => {
  if (level === "error" || level === "warn") {
    console.error(`[presence] ${level}: ${msg}`, fields ?? "");
  }
};

function unavailable(e: unknown): PresenceUnavailable {
  if (e instanceof PresenceUnavailable) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new PresenceUnavailable(`presence store unavailable: ${msg}`, { cause: e });
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const encoder = new TextEncoder();
/** Remote sends per script call at most; a larger turn's worth leaves in several calls, in order. */
const SEND_BATCH_MAX = 512;
const decoder = new TextDecoder();

/** Starts a RedisPresence: connects, takes the lease, subscribes. Rejects with PresenceUnavailable. */
export async function createRedisPresence(opts: RedisPresenceOptions): Promise<RedisPresence> {
  const p = new RedisPresence(opts);
  await p.start();
  return p;
}

export class RedisPresence implements Presence {
  readonly nodeId: string;
  readonly bridge: string;
  readonly clientAddress: string;
  readonly users = new LocalUsers();
  readonly stats: RelayStats = { publishes: 0, receives: 0, reconnects: 0, lastRttMs: 0 };

  readonly #opts: Required<Omit<RedisPresenceOptions, "onLost" | "clientAddress">>;
  readonly #log: LogFn;
  readonly #onLost?: (pseudo: string) => void;
  readonly #cmd: Redis;
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #instance = crypto.randomUUID();
  readonly #started = Date.now();
  readonly #lease: string;
  readonly #ownUsers: string;
  readonly #toChannel: string;
  readonly #allChannel = Buffer.from(channels.all);
  readonly #nodeIdBytes: Uint8Array;

  /** Pseudos whose reserve is in flight on this node. */
  #pending = new Set<string>();
  /** Frames that arrived for a pending pseudo before its reserve's reply. */
  #early = new Map<string, Uint8Array[]>();
  /** Pseudos that Redis may still bind to this node though they are not local (a failed call). */
  #uncertain = new Set<string>();
  #running = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #leaseHeld = false;
  /** Set on every (re)connect of `cmd`: reservations must be written again before ready. */
  #needResync = false;
  #resyncGen = 0;
  #ticking = false;
  #tickAgain = false;
  #tickFailing = false;
  #ticks = 0;
  #hbTimer: ReturnType<typeof setInterval> | undefined;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #lastPingRecvAt = 0;
  #lastPingAckedSentAt = 0;
  #probeGraceUntil = 0;
  #pingWaiter: (() => void) | null = null;
  #lost: Record<Kind, boolean> = { cmd: false, pub: false, sub: false };
  #strikeSeq = 0;

  /** Use createRedisPresence(); a bare instance is not connected until start(). */
  constructor(opts: RedisPresenceOptions) {
    if (!NODE_ID_PATTERN.test(opts.nodeId)) {
      throw new TypeError(
        `invalid node id ${JSON.stringify(opts.nodeId)}: use 1-64 of [A-Za-z0-9_.-]`,
      );
    }
    this.nodeId = opts.nodeId;
    this.bridge = opts.bridge;
    this.clientAddress = opts.clientAddress ?? "";
    const commandTimeoutMs = opts.commandTimeoutMs ?? 1000;
    this.#opts = {
      url: opts.url,
      nodeId: opts.nodeId,
      bridge: opts.bridge,
      leaseMs: opts.leaseMs ?? 3000,
      heartbeatMs: opts.heartbeatMs ?? 1000,
      commandTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      probeIntervalMs: opts.probeIntervalMs ?? 1000,
      probeTimeoutMs: opts.probeTimeoutMs ?? 3000,
      log: opts.log ?? defaultLog,
    };
    this.#log = this.#opts.log;
    this.#onLost = opts.onLost;
    this.#lease = keys.lease(this.nodeId);
    this.#ownUsers = keys.nodeUsers(this.nodeId);
    this.#toChannel = channels.to(this.nodeId);
    this.#nodeIdBytes = encoder.encode(this.nodeId);

    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: commandTimeoutMs,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: Math.max(1000, 2 * commandTimeoutMs),
      // Quick reconnects: 100, 200, 400, 800, then every 1000 ms.
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    };
    this.#cmd = new Redis(opts.url, { ...base, connectionName: `chatos-${this.nodeId}-cmd` });
    this.#pub = new Redis(opts.url, {
      ...base,
      enableAutoPipelining: true,
      connectionName: `chatos-${this.nodeId}-pub`,
    });
    this.#sub = new Redis(opts.url, {
      ...base,
      autoResubscribe: true,
      connectionName: `chatos-${this.nodeId}-sub`,
    });
    for (const [name, def] of Object.entries(scripts)) {
      this.#cmd.defineCommand(name, def);
    }
    this.#pub.defineCommand("sendBatch", scripts.sendBatch);
    this.#watch("cmd", this.#cmd);
    this.#watch("pub", this.#pub);
    this.#watch("sub", this.#sub);
    this.#sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      try {
        this.#onMessage(channel, message);
      } catch (e) {
        this.#log("error", "delivering a frame from redis failed", { error: errText(e) });
      }
    });
  }

  /**
   * Redis reachable on all three connections, lease held, reservations re-asserted since the
   * last reconnect, and pub/sub proven by a recent ping.
   */
  get health(): StoreHealth {
    return this;
  }

  get ready(): boolean {
    return this.#running && this.#leaseHeld && !this.#needResync &&
      this.#cmd.status === "ready" && this.#pub.status === "ready" &&
      this.#sub.status === "ready" &&
      performance.now() - this.#lastPingRecvAt <= this.#opts.probeTimeoutMs;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Connects, takes the lease, subscribes, proves pub/sub with one ping. */
  async start(): Promise<void> {
    const deadline = Date.now() + this.#opts.connectTimeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    try {
      // ioredis keeps retrying a refused connection; wait for all three up to the deadline.
      await withTimeout(
        Promise.all([this.#cmd, this.#pub, this.#sub].map(connected)),
        left(),
        "connecting to redis",
      );
      // Another process with this node id? A crashed one's lease lapses within leaseMs (a quick
      // restart under the same id just waits); a live one keeps it, and start-up fails.
      const idDeadline = Math.max(deadline, Date.now() + this.#opts.leaseMs + 500);
      for (;;) {
        const r = await this.#script("heartbeat", ...this.#heartbeatArgs());
        if (r !== 0) break;
        if (Date.now() + 250 > idDeadline) {
          throw new PresenceUnavailable(`node id ${this.nodeId} is held by another live process`);
        }
        await sleep(250);
      }
      this.#leaseHeld = true;
      await this.#reconcile(); // forget what a previous process with this id left behind
      await withTimeout(
        this.#sub.subscribe(this.#toChannel, channels.all),
        left(),
        "subscribing",
      );
      const pong = new Promise<void>((resolve) => this.#pingWaiter = resolve);
      await this.#sendPing();
      await withTimeout(pong, left(), "waiting for the first ping");
    } catch (e) {
      this.#closed = true;
      for (const c of [this.#cmd, this.#pub, this.#sub]) c.disconnect();
      throw unavailable(e);
    }
    this.#running = true;
    const hb = setInterval(() => this.#kick(false), this.#opts.heartbeatMs);
    const probe = setInterval(() => this.#probe(), this.#opts.probeIntervalMs);
    Deno.unrefTimer(hb);
    Deno.unrefTimer(probe);
    this.#hbTimer = hb;
    this.#probeTimer = probe;
    this.#log("info", "presence ready", { node: this.nodeId, bridge: this.bridge });
  }

  /** Releases this node's users and lease at once, then closes the connections. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const wasRunning = this.#running;
    this.#stopTimers();
    this.#closed = true;
    this.#running = false;
    if (wasRunning) {
      try {
        await this.#script(
          "close",
          this.#lease,
          this.#ownUsers,
          keys.nodes,
          this.#instance,
          this.nodeId,
          PREFIX,
        );
      } catch (e) {
        this.#log("warn", "close: could not release reservations; they lapse with the lease", {
          error: errText(e),
        });
      }
    }
    this.users.clear();
    this.#pending.clear();
    this.#uncertain.clear();
    await Promise.all([quit(this.#cmd), quit(this.#pub), quit(this.#sub)]);
  }

  /**
   * Test hook: dies like `kill -9` would: stops the timers and drops the
   * connections without releasing anything, so the lease simply lapses.
   */
  crashForTest(): void {
    this.#stopTimers();
    this.#closed = true;
    this.#running = false;
    this.#closing ??= Promise.resolve();
    for (const c of [this.#cmd, this.#pub, this.#sub]) c.disconnect();
    this.users.clear();
  }

  /** Test hook: silently drops the subscriptions, as a half-dead pub/sub link would. */
  async unsubscribeForTest(): Promise<void> {
    await this.#sub.unsubscribe();
  }

  #stopTimers(): void {
    clearInterval(this.#hbTimer);
    clearInterval(this.#probeTimer);
    this.#hbTimer = this.#probeTimer = undefined;
  }

  #watch(kind: Kind, c: Redis): void {
    c.on("error", (e: unknown) => {
      // ioredis reports every failed reconnect attempt; say it loudly once per outage.
      const loud = this.#running && !this.#lost[kind];
      this.#log(loud ? "warn" : "debug", `redis ${kind} error`, {
        error: errText(e),
      });
    });
    c.on("close", () => {
      if (!this.#running || this.#lost[kind]) return;
      this.#lost[kind] = true;
      if (kind === "cmd") this.#leaseHeld = false;
      this.#log("warn", `redis ${kind} connection lost; reconnecting`, { node: this.nodeId });
    });
    c.on("ready", () => {
      if (!this.#running) return;
      this.stats.reconnects++;
      this.#lost[kind] = false;
      this.#log("info", `redis ${kind} connection ready again`, { node: this.nodeId });
      if (kind === "cmd") {
        this.#needResync = true;
        this.#resyncGen++;
        this.#kick(true);
      } else if (kind === "sub") {
        this.#probeGraceUntil = performance.now() + this.#opts.probeTimeoutMs;
        // autoResubscribe restores what ioredis knew; this also covers a lost subscription.
        this.#sub.subscribe(this.#toChannel, channels.all).catch((e: unknown) =>
          this.#log("warn", "resubscribe failed", { error: errText(e) })
        );
      }
    });
  }

  // ---------------------------------------------------------------- heartbeat

  #heartbeatArgs(): (string | number)[] {
    return [
      this.#lease,
      keys.nodes,
      this.#ownUsers,
      this.#instance,
      this.nodeId,
      this.bridge,
      this.clientAddress,
      String(this.#started),
      String(this.users.size),
      String(Math.max(1, Math.ceil(this.#opts.leaseMs))),
    ];
  }

  /** Runs one heartbeat tick now, or right after the running one if `again`. */
  #kick(again: boolean): void {
    if (this.#closed) return;
    if (this.#ticking) {
      if (again) this.#tickAgain = true;
      return;
    }
    this.#ticking = true;
    this.#tick().finally(() => {
      this.#ticking = false;
      if (this.#tickAgain) {
        this.#tickAgain = false;
        this.#kick(false);
      }
    });
  }

  async #tick(): Promise<void> {
    try {
      const r = await this.#script("heartbeat", ...this.#heartbeatArgs());
      if (this.#closed) return;
      if (r === 0) {
        if (this.#leaseHeld) {
          this.#log("error", "another process holds this node id's lease", { node: this.nodeId });
        }
        this.#leaseHeld = false;
        return;
      }
      if (r === 2 && this.#running) {
        // The lease was gone: Redis lost our keys, or we stalled past the lease.
        if (this.#leaseHeld) this.#log("warn", "lease had lapsed; re-asserting reservations");
        this.#needResync = true;
      }
      this.#leaseHeld = true;
      if (this.#needResync) {
        // A reconnect during the resync sets #needResync again and kicks another tick.
        const gen = this.#resyncGen;
        await this.#reassert();
        await this.#reconcile();
        if (gen === this.#resyncGen) this.#needResync = false;
      }
      await this.#flushUncertain();
      if (++this.#ticks % PRUNE_EVERY === 0) await this.#pruneDeadNodes();
      this.#tickFailing = false;
    } catch (e) {
      if (this.#closed) return;
      this.#leaseHeld = false;
      // Once per outage is enough; a dropped connection is reported by its 'close' already.
      const loud = !this.#tickFailing && !this.#lost.cmd;
      this.#tickFailing = true;
      this.#log(loud ? "warn" : "debug", "heartbeat failed", { error: errText(e) });
    }
  }

  /** Writes every local reservation again (Redis may have restarted empty). */
  async #reassert(): Promise<void> {
    const all = [...this.users.pseudos()];
    let restored = 0;
    for (let i = 0; i < all.length; i += CHUNK) {
      const chunk = all.slice(i, i + CHUNK);
      const lost = await this.#script(
        "reassert",
        this.#ownUsers,
        this.#lease,
        this.nodeId,
        PREFIX,
        ...chunk,
      ) as string[];
      restored += chunk.length - lost.length;
      for (const p of lost) {
        if (!this.users.get(p)) continue;
        this.#log("warn", "a local user's pseudo is now held by another live node", {
          pseudo: p,
          node: this.nodeId,
        });
        try {
          this.#onLost?.(p);
        } catch (e) {
          this.#log("error", "onLost callback threw", { error: errText(e) });
        }
      }
    }
    this.#log("info", "reservations re-asserted", { node: this.nodeId, restored });
  }

  /** Drops what Redis binds to this node but this node does not serve. */
  async #reconcile(): Promise<void> {
    const members = await this.#cmd.smembers(this.#ownUsers);
    const stale = members.filter((p) => !this.users.get(p) && !this.#pending.has(p));
    // Sent in the same tick as the check: anything reserved later is ordered after it.
    await this.#releaseInRedis(stale);
  }

  async #flushUncertain(): Promise<void> {
    if (this.#uncertain.size === 0) return;
    const todo = [...this.#uncertain].filter((p) => !this.users.get(p) && !this.#pending.has(p));
    for (const p of this.#uncertain) if (this.users.get(p)) this.#uncertain.delete(p);
    await this.#releaseInRedis(todo);
    for (const p of todo) this.#uncertain.delete(p);
  }

  #releaseInRedis(pseudos: string[]): Promise<unknown> {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < pseudos.length; i += CHUNK) {
      calls.push(
        this.#script(
          "release",
          this.#ownUsers,
          this.nodeId,
          PREFIX,
          ...pseudos.slice(i, i + CHUNK),
        ),
      );
    }
    return Promise.all(calls);
  }

  async #pruneDeadNodes(): Promise<void> {
    const ids = await this.#cmd.smembers(keys.nodes);
    for (const id of ids) {
      if (id === this.nodeId) continue;
      for (let i = 0; i < 50; i++) {
        const r = await this.#script(
          "prune",
          keys.lease(id),
          keys.nodeUsers(id),
          keys.nodes,
          id,
          PREFIX,
          PRUNE_BATCH,
        );
        if (r === 0) this.#log("info", "pruned a dead node", { node: id });
        if (r !== 1) break;
      }
    }
  }

  // ---------------------------------------------------------------- liveness probe

  #sendPing(): Promise<void> {
    const sentAt = performance.now();
    const buf = Buffer.allocUnsafe(10);
    buf.writeUInt16BE(0, 0);
    buf.writeDoubleBE(sentAt, 2);
    return this.#pub.publish(this.#toChannel, buf).then(() => {
      this.#lastPingAckedSentAt = Math.max(this.#lastPingAckedSentAt, sentAt);
    });
  }

  #probe(): void {
    if (this.#closed) return;
    if (this.#pub.status === "ready" && this.#sub.status === "ready") {
      this.#sendPing().catch((e) => this.#log("debug", "ping failed", { error: errText(e) }));
    }
    const now = performance.now();
    if (
      this.#sub.status === "ready" && now >= this.#probeGraceUntil &&
      now - this.#lastPingRecvAt > this.#opts.probeTimeoutMs &&
      this.#lastPingAckedSentAt > this.#lastPingRecvAt
    ) {
      this.#log("warn", "no liveness ping through pub/sub; reconnecting the subscriber", {
        node: this.nodeId,
        silentMs: Math.round(now - this.#lastPingRecvAt),
      });
      this.#probeGraceUntil = now + this.#opts.probeTimeoutMs;
      this.#sub.disconnect(true);
    }
  }

  // ---------------------------------------------------------------- receiving

  #onMessage(channel: Buffer, msg: Buffer): void {
    if (msg.length < 2) return;
    const len = (msg[0] << 8) | msg[1];
    if (channel.length === this.#allChannel.length && channel.equals(this.#allChannel)) {
      // [u16 len][origin][u16 len][except][frame]; the origin already fanned out locally.
      if (len === this.#nodeIdBytes.length && bytesEqual(msg, 2, this.#nodeIdBytes)) return;
      const el = (msg[2 + len] << 8) | msg[3 + len];
      const start = 4 + len + el;
      if (start > msg.length) return;
      const except = decoder.decode(msg.subarray(4 + len, start));
      this.stats.receives++;
      this.users.fanOut(view(msg, start), except);
      return;
    }
    if (len === 0xffff) {
      // A batch from sendBatch: [0xFF 0xFF] then [u32 length][u16 pseudo length][pseudo][frame]...
      let at = 2;
      while (at + 6 <= msg.length) {
        const entryLen = msg.readUInt32BE(at);
        const end = at + 4 + entryLen;
        if (end > msg.length) return;
        const pl = (msg[at + 4] << 8) | msg[at + 5];
        this.#deliverRemote(
          decoder.decode(msg.subarray(at + 6, at + 6 + pl)),
          new Uint8Array(msg.buffer, msg.byteOffset + at + 6 + pl, end - (at + 6 + pl)),
        );
        at = end;
      }
      return;
    }
    if (len === 0) {
      // Our own liveness ping: [0][f64 sent-at].
      const now = performance.now();
      this.#lastPingRecvAt = now;
      if (msg.length >= 10) this.stats.lastRttMs = now - msg.readDoubleBE(2);
      this.#pingWaiter?.();
      this.#pingWaiter = null;
      return;
    }
    if (2 + len > msg.length) return;
    this.#deliverRemote(decoder.decode(msg.subarray(2, 2 + len)), view(msg, 2 + len));
  }

  #deliverRemote(pseudo: string, frame: Uint8Array): void {
    this.stats.receives++;
    const inbox = this.users.get(pseudo);
    if (inbox) inbox.deliver(frame);
    else if (this.#pending.has(pseudo)) {
      // Redis already binds the pseudo here but the reserve's reply is still on its way: keep the
      // frame for the inbox about to be bound (the sender was told it was delivered).
      const early = this.#early.get(pseudo);
      if (early) early.push(frame);
      else this.#early.set(pseudo, [frame]);
    } else this.#log("debug", "frame for a user no longer here", { pseudo });
  }

  // ---------------------------------------------------------------- Presence

  async reserve(pseudo: string, inbox: Inbox): Promise<ReserveResult> {
    this.#checkOpen();
    if (this.users.get(pseudo) || this.#pending.has(pseudo)) return "taken";
    this.#pending.add(pseudo);
    try {
      const r = await this.#script(
        "reserve",
        keys.user(pseudo),
        this.#ownUsers,
        this.#lease,
        this.nodeId,
        pseudo,
        PREFIX,
      );
      if (r !== 1) return "taken";
      if (this.#closed) throw new PresenceUnavailable("presence closed");
      this.users.add(pseudo, inbox);
      this.#uncertain.delete(pseudo);
      const early = this.#early.get(pseudo);
      if (early) {
        try {
          for (const f of early) inbox.deliver(f);
        } catch (e) {
          this.#log("error", "inbox.deliver threw", { pseudo, error: errText(e) });
        }
      }
      return "ok";
    } catch (e) {
      // The script may have run (a timeout is not a "no"): undo it right behind, on the same
      // connection; if that fails too, the heartbeat retries.
      if (!this.#closed) {
        this.#uncertain.add(pseudo);
        this.#releaseInRedis([pseudo]).then(
          () => {
            if (!this.#pending.has(pseudo)) this.#uncertain.delete(pseudo);
          },
          () => {},
        );
        if (errText(e).includes("NOLEASE")) {
          this.#leaseHeld = false;
          this.#kick(true);
        }
      }
      throw unavailable(e);
    } finally {
      this.#pending.delete(pseudo);
      this.#early.delete(pseudo);
    }
  }

  async release(pseudo: string, inbox: Inbox): Promise<void> {
    if (!this.users.remove(pseudo, inbox) || this.#closed) return;
    try {
      await this.#releaseInRedis([pseudo]);
    } catch (e) {
      this.#uncertain.add(pseudo); // retried by the heartbeat
      throw unavailable(e);
    }
  }

  send(to: string, frame: Uint8Array): boolean | Promise<boolean> {
    const local = this.users.get(to);
    if (local) {
      local.deliver(frame);
      return true;
    }
    return this.#sendRemote(to, frame);
  }

  /**
   * Remote sends wait for the end of the current turn of the event loop and
   * leave together in one script call (`sendBatch`): one Redis command and one
   * PUBLISH per destination node per turn, instead of one of each per message.
   * Measured: per-message EVALSHA cost ~30 µs of node CPU plus ~15 µs of
   * Redis CPU per message, the ceiling of cross-node SPM.
   */
  #sendRemote(to: string, frame: Uint8Array): Promise<boolean> {
    try {
      this.#checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    const p = Buffer.byteLength(to);
    const entry = Buffer.allocUnsafe(6 + p + frame.length);
    entry.writeUInt32BE(2 + p + frame.length, 0);
    entry.writeUInt16BE(p, 4);
    entry.write(to, 6);
    entry.set(frame, 6 + p);
    const { promise, resolve, reject } = Promise.withResolvers<boolean>();
    this.#batch.push({ to, entry, resolve, reject });
    if (this.#batch.length === 1) setImmediate(this.#flushSends);
    else if (this.#batch.length >= SEND_BATCH_MAX) this.#flushSends();
    return promise;
  }

  #batch: Array<{
    to: string;
    entry: Buffer;
    resolve: (ok: boolean) => void;
    reject: (e: unknown) => void;
  }> = [];

  /** Issues the pending remote sends now, in order; also called before a broadcast to keep order. */
  #flushSends = (): void => {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    const args: Array<string | Buffer> = [PREFIX, this.nodeId];
    for (const m of batch) args.push(m.to, m.entry);
    (this.#pub as unknown as Record<"sendBatch", ScriptFn>).sendBatch(...args).then(
      (r) => {
        const counts = r as number[];
        this.stats.publishes += batch.length;
        for (let i = 0; i < batch.length; i++) batch[i].resolve(counts[i] > 0);
      },
      (e) => {
        const err = unavailable(e);
        for (const m of batch) m.reject(err);
      },
    );
  };

  async broadcast(frame: Uint8Array, except: string): Promise<void> {
    this.users.fanOut(frame, except);
    this.#checkOpen();
    // Pending private messages go first: one sender's frames keep their order.
    this.#flushSends();
    const id = this.#nodeIdBytes;
    const payload = Buffer.allocUnsafe(4 + id.length + except.length * 3 + frame.length);
    payload.writeUInt16BE(id.length, 0);
    payload.set(id, 2);
    const at = 4 + id.length;
    const { written } = encoder.encodeInto(except, payload.subarray(at, at + except.length * 3));
    if (written > 0xffff) throw new PresenceUnavailable("pseudo too long");
    payload.writeUInt16BE(written, 2 + id.length);
    payload.set(frame, at + written);
    try {
      await this.#pub.publish(channels.all, payload.subarray(0, at + written + frame.length));
      this.stats.publishes++;
    } catch (e) {
      throw unavailable(e);
    }
  }

  async openHandshake(key: HandshakeKey, ttlMs: number): Promise<boolean> {
    const r = await this.#call(
      "hsOpen",
      keys.handshake(key),
      keys.pairIndex(key.a, key.b),
      key.a,
      key.b,
      String(key.password),
      String(Math.max(1, Math.ceil(ttlMs))),
      this.nodeId,
    );
    return r === 1;
  }

  async cancelHandshake(key: HandshakeKey): Promise<boolean> {
    const r = await this.#call(
      "hsCancel",
      keys.handshake(key),
      keys.pairIndex(key.a, key.b),
      String(key.password),
    );
    return r === 1;
  }

  async acceptHandshake(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean> {
    const r = await this.#call(
      "hsAccept",
      keys.handshake(key),
      endpoint.node,
      endpoint.token,
      endpoint.bridge,
    );
    return r === 1;
  }

  async claimHandshake(key: HandshakeKey): Promise<LinkEndpoint | null> {
    const r = await this.#call(
      "hsClaim",
      keys.handshake(key),
      keys.pairIndex(key.a, key.b),
      String(key.password),
    ) as [string, string, string] | null;
    if (!r) return null;
    return { node: r[0] ?? "", token: r[1] ?? "", bridge: r[2] ?? "" };
  }

  async cancelPair(a: string, b: string): Promise<HandshakeKey[]> {
    const r = await this.#call(
      "hsCancelPair",
      keys.pairIndex(a, b),
      keys.handshakePrefix(a, b),
    ) as string[];
    return r.map((pw) => ({ a, b, password: Number(pw) }));
  }

  async strike(a: string, b: string, windowMs: number): Promise<number> {
    const r = await this.#call(
      "strike",
      keys.strikes(a, b),
      String(Math.max(1, Math.ceil(windowMs))),
      `${this.#instance}:${++this.#strikeSeq}`,
    );
    return r as number;
  }

  // ---------------------------------------------------------------- helpers

  #checkOpen(): void {
    if (this.#closed) throw new PresenceUnavailable("presence closed");
  }

  #script(name: ScriptName, ...args: (string | number | Buffer)[]): Promise<unknown> {
    return (this.#cmd as unknown as Record<ScriptName, ScriptFn>)[name](...args);
  }

  async #call(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    this.#checkOpen();
    try {
      return await this.#script(name, ...args);
    } catch (e) {
      throw unavailable(e);
    }
  }
}

/** A plain Uint8Array over the same bytes (a Buffer would not deep-equal a Uint8Array). */
function view(b: Buffer, start: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + start, b.length - start);
}

function bytesEqual(b: Uint8Array, at: number, x: Uint8Array): boolean {
  for (let i = 0; i < x.length; i++) if (b[at + i] !== x[i]) return false;
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new PresenceUnavailable(`timed out ${what}`)), ms);
  });
  p.catch(() => {}); // the timeout may win; do not leave this one unhandled
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

function connected(c: Redis): Promise<void> {
  const ready = new Promise<void>((resolve) => c.once("ready", () => resolve()));
  c.connect().catch(() => {}); // failures surface as 'error' events and retries
  return ready;
}

async function quit(c: Redis): Promise<void> {
  if (c.status === "end") return;
  if (c.status === "reconnecting" || c.status === "wait") {
    c.disconnect(); // no socket: nothing to wait for
    return;
  }
  const ended = new Promise<void>((resolve) => c.once("end", () => resolve()));
  if (c.status === "ready") {
    try {
      await withTimeout(c.quit(), 1000, "quitting");
    } catch {
      c.disconnect();
    }
  } else {
    c.disconnect();
  }
  await withTimeout(ended, 1000, "closing").catch(() => c.disconnect());
}
