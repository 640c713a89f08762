/**
 * The pending private-link handshakes and their failed-join strikes in Redis:
 * one atomic script per transition (docs/REDIS.md, "Operations").
 */
import type { HandshakeKey } from "../../protocol/frames.ts";
import { type HandshakeRegistry, type LinkEndpoint, PresenceUnavailable } from "../presence.ts";
import { type Connections, unavailable } from "./connections.ts";
import type { ScriptName } from "./scripts.ts";
import { keys, pairTag } from "./schema.ts";

const ms = (n: number) => String(Math.max(1, Math.ceil(n)));

export class RedisHandshakeRegistry implements HandshakeRegistry {
  readonly #conns: Connections;
  readonly #nodeId: string;
  #closed = false;

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
