/**
 * CIDR lists such as "127.0.0.0/8,::1/128,10.0.0.0/8" (for --proxy-trusted)
 * and membership of IPv4 and IPv6 addresses. An IPv4 client seen as
 * ::ffff:a.b.c.d (a dual-stack listener) matches IPv4 entries, and an IPv4
 * address matches IPv6 entries that contain its mapped form (::/0,
 * ::ffff:0:0/96). Bad input is an error value naming the entry.
 */
import { formatIp, type Ip, isMapped, mapIp, parseIp, show, unmapIp } from "./ip.ts";

export interface Cidr {
  readonly ip: Ip;
  readonly prefix: number;
}

export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: string };
export type CidrListParse = { ok: true; list: CidrList } | { ok: false; reason: string };

/** "a.b.c.d/n", "x::y/n", or a bare address (a /32 or /128). Host bits must be zero. */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const parsed = parseIp(addr);
  if (!parsed.ok) return parsed;
  const { ip } = parsed;
  const max = ip.bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max || (p.length > 1 && p[0] === "0")) {
      return { ok: false, reason: `bad prefix length in ${show(text)} (0 to ${max})` };
    }
    prefix = Number(p);
  }
  if (!hostBitsZero(ip.bytes, prefix)) {
    return { ok: false, reason: `${show(text)} has host bits set beyond /${prefix}` };
  }
  return { ok: true, cidr: { ip, prefix } };
}

/** A comma-separated list; spaces around entries are ignored; at least one entry. */
export function parseCidrList(text: string): CidrListParse {
  const entries: Cidr[] = [];
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (item === "") return { ok: false, reason: `empty entry in CIDR list ${show(text)}` };
    const r = parseCidr(item);
    if (!r.ok) return r;
    entries.push(r.cidr);
  }
  return { ok: true, list: new CidrList(entries) };
}

export class CidrList {
  readonly #v4: readonly Cidr[];
  readonly #v6: readonly Cidr[];
  readonly entries: readonly Cidr[];

  constructor(entries: readonly Cidr[]) {
    this.entries = entries;
    this.#v4 = entries.filter((c) => c.ip.family === 4);
    this.#v6 = entries.filter((c) => c.ip.family === 6);
  }

  /** Whether the address (text or parsed) is in the list; text that is no address is not. */
  contains(address: string | Ip): boolean {
    let ip: Ip;
    if (typeof address === "string") {
      const r = parseIp(address);
      if (!r.ok) return false;
      ip = r.ip;
    } else {
      ip = address;
    }
    const v4 = ip.family === 4 ? ip : isMapped(ip) ? unmapIp(ip) : null;
    const v6 = mapIp(ip);
    if (v4 && this.#v4.some((c) => inPrefix(c, v4.bytes))) return true;
    return this.#v6.some((c) => inPrefix(c, v6.bytes));
  }

  toString(): string {
    return this.entries.map((c) => `${formatIp(c.ip)}/${c.prefix}`).join(",");
  }
}

function inPrefix(c: Cidr, bytes: Uint8Array): boolean {
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (c.ip.bytes[i] !== bytes[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (c.ip.bytes[full] & mask) === (bytes[full] & mask);
}

function hostBitsZero(bytes: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3] & (0x80 >> (bit & 7))) return false;
  }
  return true;
}
