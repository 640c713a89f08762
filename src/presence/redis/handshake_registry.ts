/**
 * The pending private-link handshakes and their failed-join strikes in Redis:
 * one atomic script per transition (docs/REDIS.md, "Operations").
 */
import type { HandshakeKey } from "../../protocol/frames.ts";
import type { LinkEndpoint } from "../presence.ts";
import type { ScriptName } from "./scripts.ts";
import { keys, pairTag } from "./schema.ts";

/** Runs a script, rejecting with PresenceUnavailable; RedisPresence supplies it. */
export type ScriptCall = (name: ScriptName, ...args: (string | number)[]) => Promise<unknown>;

const ms = (n: number) => String(Math.max(1, Math.ceil(n)));

export class RedisHandshakeRegistry {
  readonly #call: ScriptCall;
  readonly #nodeId: string;

  constructor(call: ScriptCall, nodeId: string) {
    this.#call = call;
    this.#nodeId = nodeId;
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
    return r === 1;
  }

  async cancel(key: HandshakeKey): Promise<boolean> {
    const r = await this.#call(
      "hsCancel",
      keys.handshake(key),
      keys.pairIndex(key.a, key.b),
      String(key.password),
    );
    return r === 1;
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
