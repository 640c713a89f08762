/**
 * The private-link broker of one node. B's TCPAccept parks B's new socket
 * here under a random token and records {node, token, bridge} in presence;
 * A's TCPConnect claims that record and joins A's socket to B's, directly
 * when both landed on this node, or through a node-to-node bridge otherwise.
 */
import {
  encodeError,
  ErrorCode,
  type HandshakeKey,
  handshakeKeyOf,
  type TCPAccept,
  type TCPConnect,
} from "../protocol/mod.ts";
import { handshakeId, type LinkEndpoint, PresenceUnavailable } from "../presence/presence.ts";
import { abortFrame } from "./handshakes.ts";
import type { ServerContext } from "./context.ts";
import { LinkEnd } from "./link_end.ts";
import { dialBridge } from "./bridge.ts";
import { clearTimer, type TimerId, unrefTimeout } from "../lib/timers.ts";

interface Parked {
  end: LinkEnd;
  key: HandshakeKey;
  timer: TimerId;
}

export class LinkBroker {
  #ctx: () => ServerContext;
  #parked = new Map<string, Parked>();
  #tokenByKey = new Map<string, string>();
  #live = new Set<LinkEnd>();
  /** This node's bridge address ("" when single-node) and the secret that authenticates bridges. */
  bridgeAddress = "";
  secret = "";

  constructor(ctx: () => ServerContext) {
    this.#ctx = ctx;
  }

  get parkedCount(): number {
    return this.#parked.size;
  }

  get activeEnds(): number {
    return this.#live.size;
  }

  #newEnd(conn: Deno.Conn, initial: Uint8Array, announce: boolean): LinkEnd {
    const ctx = this.#ctx();
    const end = new LinkEnd(
      conn,
      initial,
      ctx.config.linkBufferBytes,
      announce,
      (n) => (ctx.metrics.linkBytes += n),
    );
    this.#live.add(end);
    void end.closed.then(() => this.#live.delete(end));
    return end;
  }

  /** B's new connection sent TCPAccept as its first frame. */
  async openAccept(
    conn: Deno.Conn,
    frame: TCPAccept,
    raw: Uint8Array,
    rest: Uint8Array,
    address: string,
  ): Promise<void> {
    const ctx = this.#ctx();
    const key = handshakeKeyOf(frame);
    const relay = raw.slice();
    const end = this.#newEnd(conn, rest, true);
    if (ctx.handshakes.addressBlocked(address)) {
      ctx.log.warn("link attempt refused: too many failures from address", { address });
      return end.refuse([encodeError(ErrorCode.TcpNotInProtocol)]);
    }
    const token = crypto.randomUUID();
    const endpoint: LinkEndpoint = { node: ctx.presence.nodeId, token, bridge: this.bridgeAddress };
    let accepted: boolean;
    try {
      accepted = await ctx.presence.acceptHandshake(key, endpoint);
    } catch (e) {
      return this.#unavailable(end, e);
    }
    if (!accepted) {
      await ctx.handshakes.strike(key, address);
      return end.refuse([encodeError(ErrorCode.TcpNotInProtocol)]);
    }
    // Whichever comes first (the ttl, or B's socket closing) ends the wait.
    const giveUp = (reason: string) => {
      if (!this.#take(token)) return; // already joined or dropped
      end.close();
      void ctx.handshakes.abort(key, reason);
    };
    const timer = unrefTimeout(
      () => giveUp("accepted end not joined in time"),
      ctx.config.handshakeTtlMs,
    );
    this.#parked.set(token, { end, key, timer });
    this.#tokenByKey.set(handshakeId(key), token);
    end.onEndUnpaired = () => giveUp("accepting end closed");
    end.start();
    let told: boolean;
    try {
      told = await ctx.presence.send(key.a, relay);
    } catch {
      told = false;
    }
    if (!told) {
      // A is gone: nobody will ever connect.
      await ctx.handshakes.abort(key, "initiator unreachable");
    }
  }

  /** A's new connection sent TCPConnect as its first frame. */
  async openConnect(
    conn: Deno.Conn,
    frame: TCPConnect,
    rest: Uint8Array,
    address: string,
  ): Promise<void> {
    const ctx = this.#ctx();
    const key = handshakeKeyOf(frame);
    const end = this.#newEnd(conn, rest, true);
    const refusal = [encodeError(ErrorCode.TcpNotInProtocol), abortFrame(key)];
    if (ctx.handshakes.addressBlocked(address)) {
      ctx.log.warn("link attempt refused: too many failures from address", { address });
      return end.refuse(refusal);
    }
    let endpoint: LinkEndpoint | null;
    try {
      endpoint = await ctx.presence.claimHandshake(key);
    } catch (e) {
      return this.#unavailable(end, e, [abortFrame(key)]);
    }
    if (!endpoint) {
      await ctx.handshakes.strike(key, address);
      return end.refuse(refusal);
    }
    end.start();
    const peer = endpoint.node === ctx.presence.nodeId
      ? this.#take(endpoint.token)
      : await this.#dial(endpoint);
    if (!peer || peer.isClosed) {
      ctx.log.info("private link failed: accepting end is gone", { a: key.a, b: key.b });
      await end.refuse(refusal);
      // The claim consumed the handshake, so there is nothing left to cancel: just tell A and B.
      await ctx.handshakes.tellAborted([key]);
      return;
    }
    await pair(end, peer);
    ctx.metrics.linksOpened++;
    ctx.log.info("private link opened", {
      a: key.a,
      b: key.b,
      remote: endpoint.node !== ctx.presence.nodeId,
    });
  }

  async #dial(endpoint: LinkEndpoint): Promise<LinkEnd | null> {
    const ctx = this.#ctx();
    try {
      const { conn, initial } = await dialBridge(endpoint, this.secret);
      const end = this.#newEnd(conn, initial, false);
      end.start();
      return end;
    } catch (e) {
      ctx.log.warn("bridge dial failed", {
        node: endpoint.node,
        bridge: endpoint.bridge,
        error: String(e),
      });
      return null;
    }
  }

  /**
   * Another node's TCPConnect claimed a handshake whose accepting end is
   * parked here: take it for the bridge. Null if the token names no parked
   * end (the caller answers the bridge accordingly).
   */
  takeForBridge(token: string): LinkEnd | null {
    return this.#take(token);
  }

  /** Joins a parked end to an authenticated bridge connection. */
  async joinBridge(parked: LinkEnd, conn: Deno.Conn, initial: Uint8Array): Promise<void> {
    const bridgeEnd = this.#newEnd(conn, initial, false);
    bridgeEnd.start();
    await pair(parked, bridgeEnd);
    this.#ctx().metrics.linksOpened++;
  }

  /** Removes a parked end from the lot (stopping its timer) and returns it; null if not parked. */
  #take(token: string): LinkEnd | null {
    const parked = this.#parked.get(token);
    if (!parked) return null;
    clearTimer(parked.timer);
    this.#parked.delete(token);
    this.#tokenByKey.delete(handshakeId(parked.key));
    return parked.end;
  }

  /** The handshake was aborted: close its parked end here, if any, with a TCPAbort. */
  dropParked(key: HandshakeKey): void {
    const token = this.#tokenByKey.get(handshakeId(key));
    const end = token === undefined ? null : this.#take(token);
    if (end) void end.refuse([abortFrame(key)]);
  }

  async #unavailable(end: LinkEnd, e: unknown, extra: Uint8Array[] = []): Promise<void> {
    if (!(e instanceof PresenceUnavailable)) throw e;
    this.#ctx().log.warn("presence unavailable", { op: "link", error: e.message });
    await end.refuse([encodeError(ErrorCode.ServiceUnavailable), ...extra]);
  }

  closeAll(): void {
    for (const token of [...this.#parked.keys()]) this.#take(token);
    for (const end of [...this.#live]) end.close();
  }
}

/** ERROR 1 to each client end first, then the held bytes, then live copying both ways. */
async function pair(x: LinkEnd, y: LinkEnd): Promise<void> {
  try {
    await Promise.all([x.announceLinked(), y.announceLinked()]);
  } catch {
    x.close();
    y.close();
    return;
  }
  await Promise.all([x.attach(y), y.attach(x)]);
}
