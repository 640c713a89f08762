/**
 * The guessing rule for private links, applied (docs/PROTOCOL.md, "Link
 * guessing that denies nobody"; the pure parts are in guard_policy.ts). A
 * TCPAccept must come from B's client key and a TCPConnect from A's: any
 * other is foreign, refused before the handshake is looked up, and counted
 * against its sender's key only. A miss from the owner's key is one strike
 * against each pending handshake of the pair, in presence (so all nodes
 * count together); one that reaches the budget is aborted.
 */
import type { HandshakeKey } from "../../protocol/mod.ts";
import type { Directory, HandshakeRegistry } from "../../presence/presence.ts";
import type { LocalUsers } from "../local_users.ts";
import type { Logger } from "../../lib/log.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { WarnThrottle } from "../../lib/rate.ts";
import type { Metrics } from "../metrics.ts";
import type { HandshakeAborts } from "./aborts.ts";
import { AddressLimiter, clientKey, judgeAttempt, type LinkRole } from "./guard_policy.ts";

export interface GuardLimits {
  /** Strikes one handshake takes before it is aborted. */
  guessLimitPair: number;
  guessLimitAddress: number;
  guessWindowMs: number;
}

/** Client keys the limiter remembers at most (stale ones go first, then the least recent). */
const MAX_KEYS = 10_000;

/** Why a private-end frame may not touch a handshake. */
export type Refusal = "blocked" | "foreign";

/** Where the guard looks up users and their handshakes. */
export interface GuardSources {
  users: LocalUsers;
  directory: Directory;
  handshakes: HandshakeRegistry;
}

export class LinkGuard {
  #sources: GuardSources;
  #aborts: HandshakeAborts;
  #limits: GuardLimits;
  #log: Logger;
  #metrics: Metrics;
  #limiter: AddressLimiter;
  /** Refusals can be sent as fast as connections open: their log lines are rate-limited. */
  #warn: WarnThrottle;

  constructor(
    sources: GuardSources,
    aborts: HandshakeAborts,
    limits: GuardLimits,
    log: Logger,
    warn: WarnThrottle,
    metrics: Metrics,
  ) {
    this.#warn = warn;
    this.#sources = sources;
    this.#aborts = aborts;
    this.#limits = limits;
    this.#log = log;
    this.#metrics = metrics;
    this.#limiter = new AddressLimiter({
      limit: limits.guessLimitAddress,
      windowMs: limits.guessWindowMs,
      maxKeys: MAX_KEYS,
    });
  }

  /**
   * Whether a `role` frame for `k` from `address` may look up the handshake:
   * null if so, else why not (answer it as "no such handshake"). Needs only
   * the frame's A or B, never its password. Rejects with PresenceUnavailable.
   */
  async admit(role: LinkRole, k: HandshakeKey, address: string): Promise<Refusal | null> {
    const from = clientKey(address);
    if (this.#limiter.blocked(from, Date.now())) {
      this.#note("link attempt refused: too many failures from address", { address });
      return "blocked";
    }
    const owner = await this.#clientOf(role === "accept" ? k.b : k.a);
    if (judgeAttempt({ role, from: address, owner }) === "owner") return null;
    this.#metrics.foreignLinkFrames++;
    this.#limiter.record(from, Date.now());
    this.#note("link attempt refused: not from the named user's address", {
      role,
      a: k.a,
      b: k.b,
      address,
    });
    return "foreign";
  }

  /**
   * A frame from the owner's address named no handshake in the right state:
   * one strike against each pending handshake of (A, B); those at the budget
   * are aborted (TCPAbort to A and B). Never rejects.
   */
  async miss(k: HandshakeKey, address: string): Promise<void> {
    this.#metrics.hijackStrikes++;
    this.#limiter.record(clientKey(address), Date.now());
    try {
      const dropped = await this.#sources.handshakes.strikePair(
        k.a,
        k.b,
        this.#limits.guessLimitPair,
      );
      this.#note("failed private link attempt", { a: k.a, b: k.b, address });
      for (const d of dropped) this.#aborts.ended(d);
      if (dropped.length > 0) {
        this.#log.warn("handshakes aborted after repeated failed attempts", {
          a: k.a,
          b: k.b,
          count: dropped.length,
        });
        await this.#aborts.tellAborted(dropped);
      }
    } catch (e) {
      this.#log.warn("could not record failed link attempt", { error: errorMessage(e) });
    }
  }

  /** The client key `pseudo` logged in with: this node's users first, else the directory's. */
  #clientOf(pseudo: string): Promise<string | null> | string | null {
    const local = this.#sources.users.clientOf(pseudo);
    return local !== undefined ? local || null : this.#sources.directory.clientOf(pseudo);
  }

  #note(msg: string, fields: Record<string, unknown>): void {
    this.#warn.warn(msg, fields);
  }
}
