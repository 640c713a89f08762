/**
 * The pending private-link handshakes and their failed-join strikes in Redis:
 * one atomic script per transition (docs/REDIS.md, "Operations"). A cancel
 * that failed is tried again from the heartbeat: a handshake of a user who
 * left must not wait for its backstop expiry.
 */
import { handshakeId, type HandshakeKey } from "../../protocol/frames.ts";
import { type HandshakeRegistry, type LinkEndpoint, PresenceUnavailable } from "../presence.ts";
import { type Connections, unavailable } from "./connections.ts";
import type { ScriptName } from "./scripts.ts";
import { keys, pairTag } from "./schema.ts";

const ms = (n: number) => String(Math.max(1, Math.ceil(n)));
/** Failed cancels kept for a retry; past this (a long outage) the rest wait for their expiry. */
const MAX_UNSURE = 10_000;

export class RedisHandshakeRegistry implements HandshakeRegistry {
  readonly #conns: Connections;
  readonly #nodeId: string;
  #closed = false;
  /** Cancels that failed (a timeout is not a "no"), by handshake id. */
  #unsure = new Map<string, HandshakeKey>();

  constructor(conns: Connections, nodeId: string) {
    this.#conns = conns;
    this.#nodeId = nodeId;
  }

  /** Later calls are refused. */
  close(): void {
    this.#closed = true;
  }

  /** Runs a script; rejects with PresenceUnavailable. */
  async #call(name: ScriptName, ...args: string[]): Promise<unknown> {
    if (this.#closed) throw new PresenceUnavailable("presence closed");
    try {
      return await this.#conns.script(name, ...args);
    } catch (e) {
      throw unavailable(e);
    }
  }

  async open(key: HandshakeKey, ttlMs: number): Promise<boolean> {
    const r = await this.#call(
      "hsOpen",
      keys.handshake(key),
      keys.pairIndex(key.a, key.b),
      key.a,
      key.b,
      String(key.password),
      ms(ttlMs),
      this.#nodeId,
    );
    // Opened anew, so nothing of an earlier one of this triple is left to cancel.
    if (r === 1) this.#unsure.delete(handshakeId(key));
    return r === 1;
  }

  async cancel(key: HandshakeKey): Promise<boolean> {
    try {
      return await this.#call(...cancelArgs(key)) === 1;
    } catch (e) {
      if (!this.#closed && this.#unsure.size < MAX_UNSURE) this.#unsure.set(handshakeId(key), key);
      throw e;
    }
  }

  /** Tries the failed cancels again (from the heartbeat); stops at the first failure. */
  async retryCancels(): Promise<void> {
    for (const [id, key] of this.#unsure) {
      if (this.#closed) return;
      try {
        await this.#conns.script(...cancelArgs(key));
      } catch {
        return; // Redis still failing: the next tick tries again
      }
      this.#unsure.delete(id);
    }
  }

  async accept(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean> {
    const r = await this.#call(
      "hsAccept",
      keys.handshake(key),
      endpoint.node,
      endpoint.token,
      endpoint.bridge,
    );
    return r === 1;
  }

  async claim(key: HandshakeKey): Promise<LinkEndpoint | null> {
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
      pairTag(a, b),
    ) as string[];
    return r.map((pw) => ({ a, b, password: Number(pw) }));
  }

  async strikePair(a: string, b: string, budget: number): Promise<HandshakeKey[]> {
    const r = await this.#call(
      "hsStrike",
      keys.pairIndex(a, b),
      pairTag(a, b),
      String(budget),
    ) as string[];
    return r.map((pw) => ({ a, b, password: Number(pw) }));
  }
}

function cancelArgs(key: HandshakeKey): [ScriptName, string, string, string] {
  return ["hsCancel", keys.handshake(key), keys.pairIndex(key.a, key.b), String(key.password)];
}
