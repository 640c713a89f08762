/**
 * The relay through Redis pub/sub: frames for users on other nodes (outbox.ts), broadcasts to the
 * other nodes, and what arrives on this node's subscriber: frames for its users (each on the
 * user's own channel, subscribed from login to logout), answers about frames it sent that arrived
 * late, broadcasts, and its own liveness pings. The node delivers to its own users itself before
 * it asks the relay.
 */
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import type { LogFn } from "../../lib/log.ts";
import { errorMessage } from "../../lib/errors.ts";
import { clearTimer, type TimerId, unrefInterval } from "../../lib/timers.ts";
import { type NodeUsers, PresenceUnavailable, type Relay, type RelayStats } from "../presence.ts";
import type { Census } from "./census.ts";
import { type Connections, unavailable } from "./connections.ts";
import {
  ANSWER,
  type Broadcast,
  decodeBroadcast,
  decodeNodeMessage,
  encodeAnswers,
  encodeBroadcast,
  type Entry,
} from "./envelope.ts";
import { Outbox } from "./outbox.ts";
import type { Probe } from "./probe.ts";
import type { Routes } from "./routes.ts";
import { channels } from "./schema.ts";
import type { RedisTopology } from "./topology.ts";

/** What a frame's deadline leaves of the command timeout: Redis' and the clocks' slack. */
const MARGIN_MS = 250;
/** User channels per SUBSCRIBE when they are all subscribed again. */
const LISTEN_CHUNK = 1000;
/** Frames held while this node cannot vouch for its users, at most (count, bytes). */
const HELD_MAX_FRAMES = 4096;
const HELD_MAX_BYTES = 4 * 1024 * 1024;
const HELD_CHECK_MS = 100;

export interface RelayDeps {
  nodeId: string;
  conns: Connections;
  topology: RedisTopology;
  /** Where frames from other nodes go. */
  users: NodeUsers;
  /** Whether this node may vouch for its users (heartbeat.ts): frames from others wait otherwise. */
  voucher: { readonly vouching: boolean };
  routes: Routes;
  /** The other nodes' user counts: what a broadcast reaches. */
  census: Census;
  probe: Probe;
  stats: RelayStats;
  /** Longest wait for a Redis command: a frame's deadline is this less a margin. */
  commandTimeoutMs: number;
  log: LogFn;
}

export class RedisRelay implements Relay {
  readonly #d: RelayDeps;
  readonly #allChannel = Buffer.from(channels.all);
  readonly #nodeIdBytes: Uint8Array;
  readonly #outbox: Outbox;
  readonly #deadlineMs: number;
  /** Answers about late frames from each node, sent back once per turn. */
  #answers = new Map<string, { seqs: number[]; statuses: number[] }>();
  /** Frames that came while this node could not vouch for its users, held until it can. */
  #held: Entry[] = [];
  #heldBytes = 0;
  #heldTimer: TimerId | undefined;
  /** Origins of another release already reported (one warning each). */
  #olderSeen = 0;
  #closed = false;

  constructor(deps: RelayDeps) {
    this.#d = deps;
    this.#nodeIdBytes = new TextEncoder().encode(deps.nodeId);
    this.#deadlineMs = Math.max(MARGIN_MS, deps.commandTimeoutMs - MARGIN_MS);
    this.#outbox = new Outbox({
      nodeId: deps.nodeId,
      nodeIdBytes: this.#nodeIdBytes,
      conns: deps.conns,
      routes: deps.routes,
      census: deps.census,
      deadlineMs: this.#deadlineMs,
      marginMs: MARGIN_MS,
      stats: deps.stats,
      log: deps.log,
    });
    const onMessage = (channel: Buffer, message: Buffer) => {
      try {
        this.#onMessage(channel, message);
      } catch (e) {
        deps.log("error", "delivering a frame from redis failed", { error: errorMessage(e) });
      }
    };
    deps.conns.sub.on("messageBuffer", onMessage);
    deps.conns.sub.on("smessageBuffer", onMessage); // sharded channels (Redis Cluster)
  }

  get remoteUsers(): number {
    return this.#d.census.others;
  }

  /**
   * Frames can leave now: the publishing connection is up and pub/sub proved itself recently.
   * While not, nothing is sent (a broadcast is refused before anyone gets it).
   */
  get available(): boolean {
    const { conns, probe } = this.#d;
    return !this.#closed && conns.pub.status === "ready" && probe.fresh;
  }

  /** Frames sent to other nodes and not answered yet. */
  get inFlight(): number {
    return this.#outbox.pending;
  }

  /**
   * Subscribes to this node's channel, where broadcasts arrive, and every logged-in user's channel
   * (again, after a reconnect: Redis may have restarted empty).
   */
  async subscribe(): Promise<void> {
    await this.#d.topology.subscribe();
    const all = [...this.#d.users.loggedIn()].map(([p]) => channels.user(this.#d.nodeId, p));
    for (let i = 0; i < all.length; i += LISTEN_CHUNK) {
      await this.#d.conns.listen(all.slice(i, i + LISTEN_CHUNK));
    }
  }

  /**
   * Tells the other nodes this one is up (Redis Cluster: they address broadcasts to the nodes they
   * know, read on each heartbeat; a node that started since would miss them for up to one
   * period). An empty answers message: proof of life in this release's envelope.
   */
  async announce(): Promise<void> {
    if (!this.#d.conns.cluster) return; // one Redis: broadcasts go through chatos:all
    const hello = encodeAnswers(this.#nodeIdBytes, [], []);
    await Promise.all(
      this.#d.census.peers.map((id) => this.#d.conns.publishTo(channels.to(id), hello)),
    );
  }

  /** `pseudo` is logging in here: frames for it are relayed here once this resolves. */
  listen(pseudo: string): Promise<void> {
    if (!this.available) return Promise.reject(this.#why());
    return this.#d.conns.listen([channels.user(this.#d.nodeId, pseudo)]).then(
      () => {},
      (e) => Promise.reject(unavailable(e)),
    );
  }

  /** `pseudo` logged out of here: frames for it stop coming (a send now finds it gone). */
  unlisten(pseudo: string): void {
    this.#d.conns.unlisten([channels.user(this.#d.nodeId, pseudo)]).catch((e) =>
      // The subscription goes with the connection anyway; until then frames find nobody here.
      this.#d.log("debug", "unsubscribing a user's channel failed", { error: errorMessage(e) })
    );
  }

  /** Later sends and broadcasts are refused (the node is draining); nothing held is delivered. */
  close(): void {
    this.#closed = true;
    this.#release();
  }

  send(to: string, frame: Uint8Array): Promise<boolean> {
    if (!this.available) return Promise.reject(this.#why());
    return this.#outbox.send(to, frame);
  }

  /** To the other nodes (the caller fanned out locally already), after the frames queued before. */
  broadcast(frame: Uint8Array, except: string): Promise<void> {
    if (!this.available) return Promise.reject(this.#why());
    const deadline = Date.now() + this.#deadlineMs;
    let payload: Buffer;
    try {
      payload = encodeBroadcast(this.#nodeIdBytes, deadline, except, frame);
    } catch (e) {
      return Promise.reject(unavailable(e));
    }
    return this.#outbox.broadcast(payload, deadline);
  }

  #why(): PresenceUnavailable {
    return new PresenceUnavailable(this.#closed ? "presence closed" : "redis unreachable");
  }

  // ------------------------------------------------------------------ receiving

  #onMessage(channel: Buffer, msg: Buffer): void {
    const { log, probe, stats } = this.#d;
    const m = channel.equals(this.#allChannel) ? decodeBroadcast(msg) : decodeNodeMessage(msg);
    switch (m.kind) {
      case "frame":
        stats.receives++;
        this.#receive(m);
        return;
      case "answers":
        this.#d.census.learn(m.origin);
        this.#outbox.answered(m.origin, m.seqs, m.statuses);
        return;
      case "ping":
        probe.received(m.sentAt);
        return;
      case "broadcast":
        this.#fanOut(m);
        return;
      case "older-release":
        if (this.#olderSeen++ % 1000 === 0) {
          log(
            "error",
            "a node of an older release (relay protocol 1) publishes to this node: " +
              "its frames are dropped; upgrade every node of the cluster (docs/REDIS.md)",
            {},
          );
        }
        return;
      case "malformed":
        log("warn", "malformed message from redis", { reason: m.reason });
    }
  }

  /**
   * A frame for a user of this node: delivered, held while this node cannot vouch for its users,
   * or dropped past its deadline. One that came later than its sender's "in time" is answered.
   */
  #receive(e: Entry): void {
    const { users, voucher, stats } = this.#d;
    const now = Date.now();
    if (now > e.deadline) {
      stats.expired++; // its sender was told it failed, or will be
      return this.#answer(e, ANSWER.expired);
    }
    if (!voucher.vouching) return this.#hold(e);
    if (this.#held.length > 0) this.#release(); // what waited goes first: one sender's order
    const delivered = users.receive(e.pseudo, e.frame);
    if (!delivered) stats.notHere++;
    if (now > e.deadline - MARGIN_MS || !delivered) {
      this.#answer(e, delivered ? ANSWER.delivered : ANSWER.notHere);
    }
  }

  #answer(e: Entry, status: number): void {
    let answers = this.#answers.get(e.origin);
    if (!answers) {
      if (this.#answers.size === 0) setImmediate(this.#sendAnswers);
      this.#answers.set(e.origin, answers = { seqs: [], statuses: [] });
    }
    answers.seqs.push(e.seq);
    answers.statuses.push(status);
  }

  /**
   * Keeps a frame until this node may vouch for its users again (its heartbeat resynced), then
   * delivers it to whoever still holds the pseudo here: its sender was told it was delivered.
   * Bounded; past the bound a frame is lost, counted and logged.
   */
  #hold(e: Entry): void {
    if (this.#held.length >= HELD_MAX_FRAMES || this.#heldBytes + e.frame.length > HELD_MAX_BYTES) {
      this.#d.stats.heldDropped++;
      if (this.#d.stats.heldDropped % 1000 === 1) {
        this.#d.log(
          "warn",
          "frames held while this node cannot vouch for its users dropped past the bound",
          {
            dropped: this.#d.stats.heldDropped,
          },
        );
      }
      return;
    }
    this.#held.push(e);
    this.#heldBytes += e.frame.length;
    this.#heldTimer ??= unrefInterval(this.#release, HELD_CHECK_MS);
  }

  #release = (): void => {
    if (!this.#d.voucher.vouching && !this.#closed) return;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    clearTimer(this.#heldTimer);
    this.#heldTimer = undefined;
    if (this.#closed) return;
    for (const e of held) if (!this.#d.users.receive(e.pseudo, e.frame)) this.#d.stats.notHere++;
  };

  #sendAnswers = (): void => {
    const all = this.#answers;
    this.#answers = new Map();
    for (const [origin, a] of all) {
      this.#d.conns.publishTo(
        channels.to(origin),
        encodeAnswers(this.#nodeIdBytes, a.seqs, a.statuses),
      ).catch((e) => {
        this.#d.conns.redirected(e);
        // The sender settles by its deadline: delivered if its publish reached us in time.
        this.#d.log("debug", "answering a node failed", { node: origin, error: errorMessage(e) });
      });
    }
  };

  #fanOut(m: Broadcast): void {
    const { nodeId, stats, users } = this.#d;
    if (m.origin === nodeId) return; // the origin fanned out locally already
    stats.receives++;
    if (m.deadline + MARGIN_MS < Date.now()) {
      stats.expired++; // its sender was told it failed (outbox.ts)
      return;
    }
    users.fanOut(m.frame, m.except);
  }
}
