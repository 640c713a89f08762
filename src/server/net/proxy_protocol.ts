/**
 * PROXY protocol headers (HAProxy's spec, versions 1 and 2): the real client
 * address a load balancer puts in front of the stream. `parseProxyHeader`
 * looks at the bytes received so far and answers need-more, parsed or
 * invalid; it gives up as soon as the bytes cannot begin a header, so a
 * client that sends none is refused at its first byte, not at a deadline.
 * The deadline for a header that trickles in is the caller's.
 *
 * Bounds: a v1 line is at most 107 bytes (the spec's); a v2 header at most
 * 16 + `maxV2Payload` bytes (default 16 + 512: the 216-byte UNIX address
 * block plus room for TLVs such as ALPN, authority, unique id and SSL).
 */
import { concatBytes } from "../../lib/bytes.ts";
import { formatIp, type Ip, parseIp } from "./ip.ts";

export const V1_MAX_BYTES = 107;
export const V2_SIGNATURE = Uint8Array.from("\r\n\r\n\0\r\nQUIT\n", (c) => c.charCodeAt(0));
export const V2_DEFAULT_MAX_PAYLOAD = 512;
const V1_PREFIX = new TextEncoder().encode("PROXY ");

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * What the header says. `local`: v2 LOCAL (the balancer's own connection,
 * e.g. a health check), v1 UNKNOWN, or a v2 PROXY of a family without IP
 * addresses (UNSPEC, UNIX): use the socket's own address.
 */
export type ProxyHeader =
  | { readonly version: 1 | 2; readonly length: number; readonly command: "local" }
  | {
    readonly version: 1 | 2;
    /** Bytes the header takes; the stream proper starts after them. */
    readonly length: number;
    readonly command: "proxy";
    readonly family: "tcp4" | "tcp6";
    readonly source: Endpoint;
    readonly destination: Endpoint;
  };

export type ProxyParse =
  | { readonly status: "need-more" }
  | { readonly status: "parsed"; readonly header: ProxyHeader }
  | { readonly status: "invalid"; readonly reason: string };

export interface ProxyLimits {
  /** Largest v2 payload (address block + TLVs) accepted. */
  maxV2Payload?: number;
}

const NEED_MORE: ProxyParse = { status: "need-more" };

/** Parses the header at the start of `buf` (everything received so far). Pure. */
export function parseProxyHeader(buf: Uint8Array, limits: ProxyLimits = {}): ProxyParse {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) {
    return parseV2(buf, limits.maxV2Payload ?? V2_DEFAULT_MAX_PAYLOAD);
  }
  return invalid("no PROXY protocol header");
}

function invalid(reason: string): ProxyParse {
  return { status: "invalid", reason };
}

function prefixMismatch(buf: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return true;
  return false;
}

// ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ----

const V1_TCP4 =
  /^PROXY TCP4 (\d{1,3}(?:\.\d{1,3}){3}) (\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5}) (\d{1,5})$/;
const V1_TCP6 = /^PROXY TCP6 ([0-9A-Fa-f:.]{2,45}) ([0-9A-Fa-f:.]{2,45}) (\d{1,5}) (\d{1,5})$/;

function parseV1(buf: Uint8Array): ProxyParse {
  if (prefixMismatch(buf, V1_PREFIX)) return invalid("no PROXY protocol header");
  const limit = Math.min(buf.length, V1_MAX_BYTES);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const b = buf[i];
    if (b === 0x0d) {
      if (i + 2 > V1_MAX_BYTES) return tooLong(); // no room left for the LF
      if (i + 1 >= buf.length) return NEED_MORE;
      if (buf[i + 1] !== 0x0a) return invalid("v1 header: CR not followed by LF");
      end = i;
      break;
    }
    if (b < 0x20 || b > 0x7e) return invalid("v1 header: byte outside printable ASCII");
  }
  if (end < 0) return buf.length >= V1_MAX_BYTES ? tooLong() : NEED_MORE;
  const line = new TextDecoder().decode(buf.subarray(0, end));
  const length = end + 2;
  if (line === "PROXY UNKNOWN" || line.startsWith("PROXY UNKNOWN ")) {
    // The spec: ignore whatever follows UNKNOWN and use the socket's addresses.
    return { status: "parsed", header: { version: 1, length, command: "local" } };
  }
  const m4 = V1_TCP4.exec(line);
  const m = m4 ?? V1_TCP6.exec(line);
  if (!m) return invalid(`v1 header malformed: ${JSON.stringify(line.slice(0, 60))}`);
  const family = m4 ? "tcp4" : "tcp6";
  const src = v1Address(m[1], family);
  const dst = v1Address(m[2], family);
  const sport = v1Port(m[3]);
  const dport = v1Port(m[4]);
  if (src === null || dst === null) return invalid(`v1 header: bad ${family} address`);
  if (sport === null || dport === null) return invalid("v1 header: bad port");
  return {
    status: "parsed",
    header: {
      version: 1,
      length,
      command: "proxy",
      family,
      source: { address: src, port: sport },
      destination: { address: dst, port: dport },
    },
  };
}

function tooLong(): ProxyParse {
  return invalid(`v1 header longer than ${V1_MAX_BYTES} bytes`);
}

function v1Address(text: string, family: "tcp4" | "tcp6"): string | null {
  const r = parseIpOf(text);
  if (r === null || (r.family === 4) !== (family === "tcp4")) return null;
  return formatIp(r);
}

function v1Port(text: string): number | null {
  const n = Number(text);
  return n > 65535 || (text.length > 1 && text[0] === "0") ? null : n;
}

// ---- version 2: signature, ver/cmd, family, length, addresses, TLVs ----

const FAMILIES: Record<number, "tcp4" | "tcp6" | "no-ip" | "datagram"> = {
  0x00: "no-ip", // AF_UNSPEC
  0x11: "tcp4",
  0x21: "tcp6",
  0x31: "no-ip", // AF_UNIX stream
  0x12: "datagram",
  0x22: "datagram",
  0x32: "datagram",
};

function parseV2(buf: Uint8Array, maxPayload: number): ProxyParse {
  if (prefixMismatch(buf, V2_SIGNATURE)) return invalid("no PROXY protocol header");
  if (buf.length < 16) return NEED_MORE;
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return invalid(`v2 header: version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) return invalid(`v2 header: command ${command}`);
  const fam = buf[13];
  const payload = (buf[14] << 8) | buf[15];
  if (payload > maxPayload) {
    return invalid(`v2 header: ${payload} bytes over the limit ${maxPayload}`);
  }
  if (buf.length < 16 + payload) return NEED_MORE;
  const length = 16 + payload;
  const body = buf.subarray(16, length);
  if (command === 0) {
    // LOCAL: the spec says to ignore the family and the address block.
    return { status: "parsed", header: { version: 2, length, command: "local" } };
  }
  const kind = FAMILIES[fam];
  if (kind === undefined) return invalid(`v2 header: unknown family/protocol 0x${hex(fam)}`);
  if (kind === "datagram") return invalid("v2 header: a datagram family on a stream");
  const need = kind === "tcp4" ? 12 : kind === "tcp6" ? 36 : fam === 0x31 ? 216 : 0;
  if (payload < need) return invalid(`v2 header: address block of ${payload} bytes, need ${need}`);
  const tlvError = checkTlvs(body.subarray(need));
  if (tlvError) return invalid(tlvError);
  if (kind === "no-ip") {
    return { status: "parsed", header: { version: 2, length, command: "local" } };
  }
  const n = kind === "tcp4" ? 4 : 16;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const ip = (at: number): Ip =>
    n === 4
      ? { family: 4, bytes: body.slice(at, at + 4) }
      : { family: 6, bytes: body.slice(at, at + 16) };
  return {
    status: "parsed",
    header: {
      version: 2,
      length,
      command: "proxy",
      family: kind,
      source: { address: formatIp(ip(0)), port: view.getUint16(2 * n) },
      destination: { address: formatIp(ip(n)), port: view.getUint16(2 * n + 2) },
    },
  };
}

/** TLVs are skipped, but they must tile the rest of the header exactly. */
function checkTlvs(tlvs: Uint8Array): string | null {
  let at = 0;
  while (at < tlvs.length) {
    if (at + 3 > tlvs.length) return "v2 header: truncated TLV";
    const len = (tlvs[at + 1] << 8) | tlvs[at + 2];
    at += 3 + len;
    if (at > tlvs.length) return "v2 header: TLV overruns the header";
  }
  return null;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function parseIpOf(text: string): Ip | null {
  const r = parseIp(text);
  return r.ok ? r.ip : null;
}

export type ProxyRead =
  | { readonly status: "need-more" }
  | { readonly status: "parsed"; readonly header: ProxyHeader; readonly rest: Uint8Array }
  | { readonly status: "invalid"; readonly reason: string };

/**
 * Feeds reads to `parseProxyHeader` until it decides. Holds at most one
 * header's worth of bytes; `rest` is what followed the header in the reads
 * (the client's first frames), for the caller to hand on.
 */
export class ProxyHeaderReader {
  #held: Uint8Array = new Uint8Array(0);
  #limits: ProxyLimits;

  constructor(limits: ProxyLimits = {}) {
    this.#limits = limits;
  }

  push(chunk: Uint8Array): ProxyRead {
    this.#held = this.#held.length === 0 ? chunk.slice() : concatBytes([this.#held, chunk]);
    const r = parseProxyHeader(this.#held, this.#limits);
    if (r.status !== "parsed") return r;
    const rest = this.#held.subarray(r.header.length);
    this.#held = new Uint8Array(0);
    return { status: "parsed", header: r.header, rest };
  }
}
