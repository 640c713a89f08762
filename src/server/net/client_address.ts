/**
 * Who a new client connection is: its real address, and the bytes already
 * read past a PROXY header (the client's first frames). Without
 * `--proxy-protocol` that is the socket's peer. With it, a peer in
 * `--proxy-trusted` (the balancer) must start with a PROXY v1/v2 header
 * within the deadline, and the header's source is the client; any other peer
 * is read as ChatOS directly, so a header it sends is a malformed frame
 * (docs/PROTOCOL.md, "Real client addresses").
 */
import { canonicalAddress } from "./ip.ts";
import type { CidrList } from "./cidr.ts";
import { ProxyHeaderReader } from "./proxy_protocol.ts";
import { clearTimer, unrefTimeout } from "../../lib/timers.ts";
import { closeQuietly } from "../../lib/errors.ts";

export type Identified =
  | { ok: true; address: string; initial: Uint8Array }
  | { ok: false; address: string; reason: string };

export interface ProxyPolicy {
  trusted: CidrList;
  headerTimeoutMs: number;
}

const NOTHING = new Uint8Array(0);

/** The socket's peer address in the one spelling used for keys and logs. */
function peerAddress(conn: Deno.Conn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return a.hostname ? canonicalAddress(a.hostname) : "unknown";
}

/**
 * Who a new connection is: at once (a value) when no header is expected from
 * its peer, or once its header is read (a promise) when it is.
 */
export function identifier(
  policy: ProxyPolicy | null,
): (conn: Deno.Conn) => Identified | Promise<Identified> {
  return (conn) => {
    const peer = peerAddress(conn);
    if (policy === null || !policy.trusted.contains(peer)) {
      return { ok: true, address: peer, initial: NOTHING };
    }
    return readProxyHeader(conn, peer, policy);
  };
}

async function readProxyHeader(
  conn: Deno.Conn,
  peer: string,
  policy: ProxyPolicy,
): Promise<Identified> {
  const reader = new ProxyHeaderReader();
  const buf = new Uint8Array(1024);
  let timedOut = false;
  // Closing the socket ends the pending read; the caller closes it again, harmlessly.
  const timer = unrefTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, policy.headerTimeoutMs);
  try {
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (e) {
        if (timedOut) return refuse(peer, "no PROXY header before the deadline");
        return refuse(peer, `read failed before the PROXY header: ${(e as Error).name}`);
      }
      if (n === null) {
        return refuse(
          peer,
          timedOut ? "no PROXY header before the deadline" : "closed before the PROXY header",
        );
      }
      const r = reader.push(buf.subarray(0, n));
      if (r.status === "need-more") continue;
      if (r.status === "invalid") return refuse(peer, `bad PROXY header: ${r.reason}`);
      const address = r.header.command === "proxy"
        ? canonicalAddress(r.header.source.address)
        : peer;
      return { ok: true, address, initial: r.rest };
    }
  } finally {
    clearTimer(timer);
  }
}

function refuse(address: string, reason: string): Identified {
  return { ok: false, address, reason };
}
