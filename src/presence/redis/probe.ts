/**
 * The liveness probe: a pub/sub link can die silently (subscribed on paper,
 * nothing arriving), so a node publishes a ping to its own channel every
 * interval; if published pings stop coming back for `timeoutMs`, the
 * subscriber connection is dropped and reopened.
 */
import { clearTimer, type TimerId, unrefInterval } from "../../lib/timers.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import { PresenceUnavailable, type RelayStats } from "../presence.ts";
import type { Connections } from "./connections.ts";
import { encodePing } from "./envelope.ts";
import { withDeadline } from "../../lib/async.ts";

export interface ProbeOptions {
  nodeId: string;
  /** The node's own channel: pings go there and come back through the subscriber. */
  channel: string;
  intervalMs: number;
  timeoutMs: number;
}

export class Probe {
  readonly #o: ProbeOptions;
  readonly #conns: Connections;
  readonly #stats: RelayStats;
  readonly #log: LogFn;
  #timer: TimerId | undefined;
  #lastRecvAt = 0;
  #lastAckedSentAt = 0;
  #graceUntil = 0;
  #waiter: (() => void) | null = null;

  constructor(opts: ProbeOptions, conns: Connections, stats: RelayStats, log: LogFn) {
    this.#o = opts;
    this.#conns = conns;
    this.#stats = stats;
    this.#log = log;
  }

  /** A ping came back within the timeout. */
  get fresh(): boolean {
    return performance.now() - this.#lastRecvAt <= this.#o.timeoutMs;
  }

  /** Sends one ping and waits for it to come back: proves the pub/sub path at start-up. */
  async first(ms: number): Promise<void> {
    const pong = new Promise<void>((resolve) => this.#waiter = resolve);
    await this.#ping();
    await withDeadline(pong, ms, () => new PresenceUnavailable("timed out waiting for a ping"));
  }

  start(): void {
    this.#timer = unrefInterval(() => this.#tick(), this.#o.intervalMs);
  }

  stop(): void {
    clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** Our own ping arrived (the relay decodes it). */
  received(sentAt: number): void {
    const now = performance.now();
    this.#lastRecvAt = now;
    this.#stats.lastRttMs = now - sentAt;
    this.#waiter?.();
    this.#waiter = null;
  }

  /**
   * The subscriber reconnected, or Redis failed over under it: pings from before prove nothing
   * now. Not fresh until one comes back; a timeout's worth of grace before judging it.
   */
  subscriberReady(): void {
    this.#lastRecvAt = Math.min(this.#lastRecvAt, performance.now() - this.#o.timeoutMs - 1);
    this.#graceUntil = performance.now() + this.#o.timeoutMs;
  }

  #ping(): Promise<void> {
    const sentAt = performance.now();
    return this.#conns.publishTo(this.#o.channel, encodePing(sentAt)).then(() => {
      this.#lastAckedSentAt = Math.max(this.#lastAckedSentAt, sentAt);
    });
  }

  #tick(): void {
    const { pub, sub } = this.#conns;
    if (pub.status === "ready" && sub.status === "ready") {
      this.#ping().catch((e) => this.#log("debug", "ping failed", { error: errorMessage(e) }));
    }
    const now = performance.now();
    if (
      sub.status === "ready" && now >= this.#graceUntil &&
      now - this.#lastRecvAt > this.#o.timeoutMs &&
      this.#lastAckedSentAt > this.#lastRecvAt
    ) {
      this.#log("warn", "no liveness ping through pub/sub; reconnecting the subscriber", {
        node: this.#o.nodeId,
        silentMs: Math.round(now - this.#lastRecvAt),
      });
      this.#graceUntil = now + this.#o.timeoutMs;
      sub.disconnect(true);
    }
  }
}
