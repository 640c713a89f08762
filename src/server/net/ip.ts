/**
 * IP addresses as bytes: parsing the text forms (strictly: no zones, no
 * leading zeros in IPv4, which some parsers read as octal), the canonical
 * text form (RFC 5952 for IPv6), and IPv4-mapped IPv6 (::ffff:a.b.c.d) in
 * both directions. Used by the CIDR lists, the PROXY protocol parser and
 * anything that keys state by client address.
 */

export type Ip =
  | { readonly family: 4; readonly bytes: Uint8Array }
  | { readonly family: 6; readonly bytes: Uint8Array };

export type IpParse = { ok: true; ip: Ip } | { ok: false; reason: string };

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** An IPv4 or IPv6 address from its text form. */
export function parseIp(text: string): IpParse {
  if (text.includes(":")) return parseV6(text);
  const v4 = parseV4(text);
  return v4 ? { ok: true, ip: { family: 4, bytes: v4 } } : bad(`not an IP address: ${show(text)}`);
}

/** The four parts of a strict dotted quad (no leading zeros, each ≤ 255), or null. */
function v4Parts(text: string): RegExpExecArray | null {
  const m = V4.exec(text);
  if (!m) return null;
  for (let i = 1; i <= 4; i++) {
    const part = m[i];
    if ((part.length > 1 && part[0] === "0") || Number(part) > 255) return null;
  }
  return m;
}

/** True for an IPv4 address already in canonical form ("10.0.0.1"; not "010.0.0.1"): no bytes built. */
export function isCanonicalV4(text: string): boolean {
  return v4Parts(text) !== null;
}

function parseV4(text: string): Uint8Array | null {
  const m = v4Parts(text);
  return m && Uint8Array.of(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
}

function parseV6(text: string): IpParse {
  const fail = () => bad(`not an IPv6 address: ${show(text)}`);
  if (text.includes("%")) return bad(`IPv6 zone not allowed: ${show(text)}`);
  const halves = text.split("::");
  if (halves.length > 2) return fail();
  const groups: number[][] = [];
  for (const half of halves) {
    const words: number[] = [];
    const parts = half === "" ? [] : half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1 && half === halves[halves.length - 1];
      if (last && part.includes(".")) {
        const v4 = parseV4(part);
        if (!v4) return fail();
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (HEX_GROUP.test(part)) {
        words.push(parseInt(part, 16));
      } else {
        return fail();
      }
    }
    groups.push(words);
  }
  const count = groups.reduce((n, g) => n + g.length, 0);
  let words: number[];
  if (groups.length === 1) {
    if (count !== 8) return fail();
    words = groups[0];
  } else {
    if (count > 7) return fail();
    words = [...groups[0], ...new Array(8 - count).fill(0), ...groups[1]];
  }
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return { ok: true, ip: { family: 6, bytes } };
}

/** True for ::ffff:a.b.c.d. */
export function isMapped(ip: Ip): boolean {
  return ip.family === 6 && MAPPED_PREFIX.every((b, i) => ip.bytes[i] === b);
}

/** ::ffff:a.b.c.d as a.b.c.d; any other address unchanged. */
export function unmapIp(ip: Ip): Ip {
  return isMapped(ip) ? { family: 4, bytes: ip.bytes.slice(12) } : ip;
}

/** a.b.c.d as ::ffff:a.b.c.d; an IPv6 address unchanged. */
export function mapIp(ip: Ip): Ip {
  if (ip.family === 6) return ip;
  const bytes = new Uint8Array(16);
  bytes.set(MAPPED_PREFIX);
  bytes.set(ip.bytes, 12);
  return { family: 6, bytes };
}

/** The canonical text: dotted IPv4; RFC 5952 IPv6 (lower case, longest zero run as "::"). */
export function formatIp(ip: Ip): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (isMapped(ip)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  let bestAt = -1;
  let bestLen = 1; // RFC 5952: a single zero group is not shortened
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestAt < 0) return hex(words);
  return `${hex(words.slice(0, bestAt))}::${hex(words.slice(bestAt + bestLen))}`;
}

/**
 * One spelling per client for keys and logs: "::ffff:10.0.0.1", "10.0.0.1"
 * and a dual-stack listener's view of the same client all give "10.0.0.1".
 * Text that is not an address comes back unchanged.
 */
export function canonicalAddress(text: string): string {
  // Every client connection asks; an IPv4 address is its own form (no parse, no new string).
  if (isCanonicalV4(text)) return text;
  const r = parseIp(text);
  return r.ok ? formatIp(unmapIp(r.ip)) : text;
}

function bad(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/** Bad input quoted for an error message, cut short so a message stays a line. */
export function show(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}
