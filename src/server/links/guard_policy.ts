/**
 * The rule that keeps 16-bit link passwords unguessable without letting
 * anyone but A and B abort or block A and B's handshakes (docs/PROTOCOL.md,
 * "Link guessing that denies nobody"). Pure: no clock, no I/O, no store. The
 * link broker asks `judgeAttempt` before it touches a handshake, the stores
 * count strikes per handshake (presence/strike_ledger.ts; Redis does the same
 * in Lua), and `AddressLimiter` bounds what one client address may try.
 */
import { formatIp, isCanonicalV4, parseIp, unmapIp } from "../net/ip.ts";

/** TCPAccept is B's to send, TCPConnect A's. */
export type LinkRole = "accept" | "connect";

/** IPv6 addresses in one /64 are one client: privacy addresses rotate inside it. */
export const DEFAULT_V6_PREFIX_BITS = 64;

/**
 * Who an address is, for this rule: an IPv4 address (IPv4-mapped IPv6
 * unmapped), or the /64 an IPv6 address lies in. Text that is not an
 * address (a Unix socket, say) is its own key.
 */
export function clientKey(address: string, v6PrefixBits = DEFAULT_V6_PREFIX_BITS): string {
  if (isCanonicalV4(address)) return address; // every login asks: no parse, no new string
  const r = parseIp(address);
  if (!r.ok) return address;
  const ip = unmapIp(r.ip);
  if (ip.family === 4) return formatIp(ip);
  const bytes = ip.bytes.slice();
  for (let bit = v6PrefixBits; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return `${formatIp({ family: 6, bytes })}/${v6PrefixBits}`;
}

export function sameClient(a: string, b: string, v6PrefixBits = DEFAULT_V6_PREFIX_BITS): boolean {
  return clientKey(a, v6PrefixBits) === clientKey(b, v6PrefixBits);
}

export interface Attempt {
  readonly role: LinkRole;
  /** The real address the private-end connection came from (PROXY protocol applied). */
  readonly from: string;
  /**
   * The chat-connection address of the user the role names (B for accept, A
   * for connect), as recorded with the handshake or the user's presence;
   * null when that user is not logged in anywhere.
   */
  readonly owner: string | null;
}

/**
 * `foreign`: refuse as "no such handshake" and count it against `from` only;
 * the handshake, the pair and their strikes are not touched, so a stranger
 * can neither guess nor abort. `owner`: the frame may name A and B's
 * handshake; look it up, and a miss is a strike against the pair's pending
 * handshakes.
 */
export type Verdict = "foreign" | "owner";

export function judgeAttempt(a: Attempt, v6PrefixBits = DEFAULT_V6_PREFIX_BITS): Verdict {
  if (a.owner === null) return "foreign";
  return sameClient(a.from, a.owner, v6PrefixBits) ? "owner" : "foreign";
}

/**
 * Refused link frames per client key within a sliding window; past the limit
 * that key is refused outright until the window passes. Memory is bounded:
 * at most `maxKeys` keys and `limit` stamps each; when full, keys with
 * nothing in the window go first, then the least recently seen.
 */
export class AddressLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** Stamps in the window per key, oldest first; Map order = least recently recorded first. */
  readonly #stamps = new Map<string, number[]>();

  constructor(opts: { limit: number; windowMs: number; maxKeys: number }) {
    this.#limit = opts.limit;
    this.#windowMs = opts.windowMs;
    this.#maxKeys = opts.maxKeys;
  }

  get trackedKeys(): number {
    return this.#stamps.size;
  }

  #recent(key: string, now: number): number[] {
    const list = this.#stamps.get(key);
    if (!list) return [];
    const from = now - this.#windowMs;
    let drop = 0;
    while (drop < list.length && list[drop] <= from) drop++;
    if (drop > 0) list.splice(0, drop);
    if (list.length === 0) this.#stamps.delete(key);
    return list;
  }

  /** True while `key` has used up its attempts. */
  blocked(key: string, now: number): boolean {
    return this.#recent(key, now).length >= this.#limit;
  }

  /** Counts one refused or failed attempt from `key`. */
  record(key: string, now: number): void {
    const list = this.#recent(key, now);
    this.#stamps.delete(key);
    list.push(now);
    if (list.length > this.#limit) list.shift(); // more than `limit` changes nothing
    this.#stamps.set(key, list);
    if (this.#stamps.size > this.#maxKeys) this.#evict(now);
  }

  #evict(now: number): void {
    for (const k of [...this.#stamps.keys()]) {
      if (this.#stamps.size <= this.#maxKeys) return;
      this.#recent(k, now);
    }
    for (const k of this.#stamps.keys()) {
      if (this.#stamps.size <= this.#maxKeys) return;
      this.#stamps.delete(k);
    }
  }
}
