/**
 * The sending side of the relay: frames for users of other nodes.
 *
 * A node subscribes to one channel per user logged in on it (`chatos:to:{<node>}:u:<pseudo>`, from
 * login to logout), so the receiver count of a PUBLISH there says, atomically in Redis, whether
 * that node holds the user when the frame is relayed. A send publishes to the channel its route
 * names (routes.ts; on a miss, one GET of the user key); a count of 0 means the route was wrong
 * (the user left or moved): the route is dropped and looked up again, up to MAX_TRIES. Every
 * publish of a turn of the event loop leaves in one write. No script runs, and the way back is
 * the publish's own reply: one trip through Redis, as for an SMA.
 *
 * What the sender is told (docs/REDIS.md, "What a sender is told"). Each frame carries a deadline
 * (sent + deadlineMs); the receiving node drops what arrives after it, and answers, on this
 * node's channel, every frame that arrives later than `deadline - margin` (delivered or expired):
 * - a reply with receivers by `deadline - margin`: delivered (ERROR 1);
 * - a reply with none: unreachable (ERROR 4) once a fresh lookup finds the user nowhere else;
 * - otherwise (a late reply, an error, a timeout): the receiving node's answer decides, and
 *   without one by `deadline + 2 × margin`, a frame whose publish reached a node counts as
 *   delivered (it arrived before `deadline - margin`, else it would have been answered) and one
 *   whose publish never replied as failed (ERROR 9: Redis ran it late or not at all, and a late
 *   frame is dropped by its receiver, so it is never delivered after the sender was told).
 * Frames from one sender to one recipient keep their order while the recipient stays logged in on
 * one node; a broadcast never overtakes an earlier frame of the same sender.
 */
import type { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import { clearTimer, type TimerId, unrefInterval } from "../../lib/timers.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import { PresenceUnavailable, type RelayStats } from "../presence.ts";
import type { Census } from "./census.ts";
import { type Connections, unavailable } from "./connections.ts";
import { ANSWER, encodeFrame } from "./envelope.ts";
import type { Routes } from "./routes.ts";
import { channels, keys, parseHolder } from "./schema.ts";

/** Publishes of one frame, at most: the first, and after a move or two. */
const MAX_TRIES = 3;
/** How often frames waiting for a late answer are checked against their deadlines. */
const SWEEP_MS = 50;

interface Pending {
  seq: number;
  to: string;
  frame: Uint8Array;
  deadline: number;
  tries: number;
  /** The node it was last published to; null while its route is looked up. */
  node: string | null;
  /** A publish reached a subscriber of `node` (late, or the wait is for an answer). */
  reached: boolean;
  startedAt: number;
  resolve(ok: boolean): void;
  reject(e: unknown): void;
}

/** A broadcast not answered yet: by its publish replies, or failed at its deadline. */
interface PendingBroadcast {
  payload: Buffer;
  deadline: number;
  done: boolean;
  resolve(): void;
  reject(e: unknown): void;
}

/** A turn's work, in the order it was asked for. */
type Item = { kind: "send"; p: Pending } | { kind: "broadcast"; b: PendingBroadcast };

export interface OutboxDeps {
  nodeId: string;
  /** Encoded once: every frame names its origin. */
  nodeIdBytes: Uint8Array;
  conns: Connections;
  routes: Routes;
  /** The other nodes of this release (Redis Cluster broadcast targets), and those of another. */
  census: Census;
  /** A frame's life: see above. */
  deadlineMs: number;
  marginMs: number;
  stats: RelayStats;
  log: LogFn;
}

export class Outbox {
  readonly #d: OutboxDeps;
  #seq = 0;
  /** Frames not settled yet, by seq; insertion order is deadline order (a retry keeps both). */
  readonly #pending = new Map<number, Pending>();
  /** Broadcasts not settled yet, in deadline order. */
  #broadcasts: PendingBroadcast[] = [];
  #turn: Item[] = [];
  /** The previous turn, while it waits for lookups: a later turn is issued after it. */
  #issuing: Promise<void> | null = null;
  #sweep: TimerId | undefined;

  constructor(deps: OutboxDeps) {
    this.#d = deps;
  }

  get pending(): number {
    return this.#pending.size;
  }

  send(to: string, frame: Uint8Array): Promise<boolean> {
    const { promise, resolve, reject } = Promise.withResolvers<boolean>();
    const p: Pending = {
      seq: this.#seq = (this.#seq + 1) >>> 0,
      to,
      frame,
      deadline: Date.now() + this.#d.deadlineMs,
      tries: 0,
      node: null,
      reached: false,
      startedAt: performance.now(),
      resolve,
      reject,
    };
    this.#pending.set(p.seq, p);
    this.#d.stats.sent++;
    this.#watch();
    this.#enqueue({ kind: "send", p });
    return promise;
  }

  /** Queues a broadcast payload (whose deadline it carries) behind this turn's frames. */
  broadcast(payload: Buffer, deadline: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const b: PendingBroadcast = { payload, deadline, done: false, resolve, reject };
    this.#broadcasts.push(b);
    this.#watch();
    this.#enqueue({ kind: "broadcast", b });
    return promise;
  }

  #enqueue(item: Item): void {
    this.#turn.push(item);
    if (this.#turn.length === 1) setImmediate(this.#flush);
  }

  /** Another node's answers about frames of ours that reached it late. */
  answered(origin: string, seqs: number[], statuses: number[]): void {
    for (let i = 0; i < seqs.length; i++) {
      const p = this.#pending.get(seqs[i]);
      if (!p || p.node !== origin) continue; // settled already, or about an earlier try
      if (statuses[i] === ANSWER.delivered) this.#settle(p, true);
      else if (statuses[i] === ANSWER.expired) {
        this.#fail(p, new PresenceUnavailable("the frame reached its node past its deadline"));
      } else {
        this.#d.routes.drop(p.to, origin);
        this.#retry(p, origin);
      }
    }
  }

  // ------------------------------------------------------------------ issuing a turn

  #flush = (): void => {
    const items = this.#turn;
    this.#turn = [];
    if (items.length === 0) return;
    const misses = this.#routeAll(items);
    // A turn waits for its lookups, and for the turn before it, so nothing overtakes.
    if (misses === null && this.#issuing === null) return this.#issue(items);
    const before = this.#issuing ?? Promise.resolve();
    const issuing = Promise.all([before, misses]).then(() => this.#issue(items));
    this.#issuing = issuing;
    void issuing.finally(() => {
      if (this.#issuing === issuing) this.#issuing = null;
    });
  };

  /** Gives each send its route; null if all were known, else a promise of the lookups. */
  #routeAll(items: Item[]): Promise<unknown> | null {
    let lookups: Promise<unknown>[] | null = null;
    for (const item of items) {
      if (item.kind !== "send") continue;
      const node = this.#d.routes.get(item.p.to);
      if (node !== undefined) item.p.node = node;
      else (lookups ??= []).push(this.#lookup(item.p));
    }
    return lookups && Promise.all(lookups);
  }

  /** Finds `p`'s node in Redis (one GET); settles `p` if the user is on no other node. */
  async #lookup(p: Pending): Promise<void> {
    p.node = null;
    let value: string | null;
    try {
      value = await this.#d.conns.pub.get(keys.user(p.to));
    } catch (e) {
      return this.#fail(p, unavailable(e));
    }
    const node = value === null ? null : parseHolder(value).node;
    // Nobody, or this node (a login in flight here, or one that just ended): not another node's.
    if (node === null || node === this.#d.nodeId) return this.#settle(p, false);
    if (this.#d.census.foreign(node)) {
      return this.#fail(
        p,
        new PresenceUnavailable("the recipient is on a node of another release"),
      );
    }
    this.#d.routes.set(p.to, node);
    p.node = node;
  }

  #issue(items: Item[]): void {
    const { conns, nodeIdBytes } = this.#d;
    // One write for the whole turn where the client allows it (not across Redis Cluster slots).
    const pipeline = conns.cluster ? null : conns.pub.pipeline();
    const publish = (channel: string, payload: Buffer): Promise<number> => {
      if (!pipeline) return conns.publishTo(channel, payload);
      const { promise, resolve, reject } = Promise.withResolvers<number>();
      pipeline.publish(channel, payload, (e, n) => e ? reject(e) : resolve(n as number));
      return promise;
    };
    for (const item of items) {
      if (item.kind === "broadcast") {
        this.#publishBroadcast(item.b, publish);
        continue;
      }
      const p = item.p;
      const node = p.node;
      if (node === null || !this.#pending.has(p.seq)) continue; // settled by its lookup
      p.tries++;
      this.#d.stats.publishes++;
      const payload = encodeFrame(nodeIdBytes, p.seq, p.deadline, p.to, p.frame);
      publish(channels.user(node, p.to), payload).then(
        (receivers) => this.#replied(p, node, receivers),
        (e) => {
          // Settled by the sweep (failed) unless its node answers: Redis may still run it late,
          // and then the node drops it as expired.
          conns.redirected(e);
          this.#d.log("debug", "publishing a frame failed", { node, error: errorMessage(e) });
        },
      );
    }
    pipeline?.exec().catch(() => {}); // each command's callback has its own outcome
  }

  #replied(p: Pending, node: string, receivers: number): void {
    if (!this.#pending.has(p.seq) || p.node !== node) return;
    if (receivers === 0) {
      // That node does not hold the user now (left, moved, or the node is gone): look again.
      this.#d.routes.drop(p.to, node);
      return this.#retry(p, node);
    }
    // In time: the node had it before it would answer; late: its answer decides.
    if (Date.now() <= p.deadline - this.#d.marginMs) return this.#settle(p, true);
    p.reached = true;
  }

  #publishBroadcast(
    b: PendingBroadcast,
    publish: (channel: string, payload: Buffer) => Promise<number>,
  ): void {
    const { conns, census, stats } = this.#d;
    stats.publishes++;
    // Its receivers take it until deadline + margin: a reply by the deadline means they had it
    // in time. A later one (Redis stalled) is answered failed: then they most likely dropped it.
    const settle = (e: unknown | null) => {
      if (b.done) return;
      b.done = true;
      if (e === null && Date.now() <= b.deadline) b.resolve();
      else b.reject(unavailable(e ?? new Error("Redis relayed the broadcast after its deadline")));
    };
    if (!conns.cluster) {
      publish(channels.all, b.payload).then(() => settle(null), (e) => settle(e));
      return;
    }
    // Redis Cluster: to every other node's sharded channel, behind the frames queued for it.
    const targets = census.peers;
    if (targets.length === 0) return settle(null);
    let reached = 0, failed = 0;
    let firstError: unknown = null;
    const done = () => {
      if (reached + failed < targets.length) return;
      settle(reached > 0 ? null : firstError);
      if (failed > 0 && reached > 0) {
        stats.broadcastsPartial++;
        this.#d.log("warn", "a broadcast missed the nodes whose Redis shard is down", { failed });
      }
    };
    for (const node of targets) {
      publish(channels.to(node), b.payload).then(
        () => {
          reached++;
          done();
        },
        (e) => {
          conns.redirected(e);
          failed++;
          firstError ??= e;
          done();
        },
      );
    }
  }

  // ------------------------------------------------------------------ settling

  /**
   * Tries again after a wrong route: a fresh lookup. Unreachable if Redis names the same node
   * again (the user is leaving it, or that node is gone), or past MAX_TRIES.
   */
  #retry(p: Pending, wrongNode: string): void {
    if (p.tries >= MAX_TRIES) return this.#settle(p, false);
    void this.#lookup(p).then(() => {
      if (!this.#pending.has(p.seq) || p.node === null) return;
      if (p.node === wrongNode) return this.#settle(p, false);
      this.#enqueue({ kind: "send", p });
    });
  }

  #settle(p: Pending, ok: boolean): void {
    if (!this.#pending.delete(p.seq)) return;
    const stats = this.#d.stats;
    if (ok) stats.delivered++;
    else stats.unreachable++;
    stats.sendLatency.observe(performance.now() - p.startedAt);
    p.resolve(ok);
  }

  #fail(p: Pending, e: unknown): void {
    if (!this.#pending.delete(p.seq)) return;
    this.#d.stats.failed++;
    p.reject(e);
  }

  /**
   * Past deadline + 2 × margin, what is still pending is settled: a frame whose publish reached a
   * node counts as delivered (it arrived early enough not to be answered), any other as failed.
   */
  #watch(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = unrefInterval(() => {
      const now = Date.now();
      const late = 2 * this.#d.marginMs;
      for (const p of this.#pending.values()) {
        if (p.deadline + late > now) break;
        if (p.reached) this.#settle(p, true);
        else this.#fail(p, new PresenceUnavailable("no answer from Redis in time"));
      }
      while (this.#broadcasts.length > 0) {
        const b = this.#broadcasts[0];
        if (!b.done && b.deadline + late > now) break;
        this.#broadcasts.shift();
        if (!b.done) {
          b.done = true;
          b.reject(new PresenceUnavailable("no answer from Redis in time"));
        }
      }
      if (this.#pending.size === 0 && this.#broadcasts.length === 0) {
        clearTimer(this.#sweep);
        this.#sweep = undefined;
      }
    }, SWEEP_MS);
  }
}
