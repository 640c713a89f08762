/**
 * The private-link broker of one node. B's TCPAccept parks B's new socket
 * here under a random token and records {node, token, bridge} in presence;
 * A's TCPConnect claims that record and joins A's socket to B's, directly
 * when both landed on this node, or through a node-to-node bridge otherwise
 * (this node dials the other's bridge port, or answers a dial on its own).
 */
import {
  encodeError,
  ErrorCode,
  type HandshakeKey,
  handshakeKeyOf,
  type TCPAccept,
  type TCPConnect,
} from "../../protocol/mod.ts";
import {
  handshakeId,
  type LinkEndpoint,
  type Presence,
  PresenceUnavailable,
} from "../../presence/presence.ts";
import type { Logger } from "../../lib/log.ts";
import { writeAll } from "../../lib/async.ts";
import { closeQuietly, errorMessage } from "../../lib/errors.ts";
import { clearTimer, type TimerId, unrefTimeout } from "../../lib/timers.ts";
import type { Metrics } from "../metrics.ts";
import { abortFrame, type Handshakes } from "./handshakes.ts";
import type { LinkGuard } from "./guard.ts";
import { LinkEnd } from "./end.ts";
import { dialBridge, readGreeting } from "./bridge.ts";

export interface BrokerDeps {
  presence: Presence;
  handshakes: Handshakes;
  guard: LinkGuard;
  log: Logger;
  metrics: Metrics;
  limits: { linkBufferBytes: number; handshakeTtlMs: number };
  /** This node's bridge address ("" when single-node) and the secret that authenticates bridges. */
  bridge: { address: string; secret: string };
}

interface Parked {
  end: LinkEnd;
  key: HandshakeKey;
  timer: TimerId;
}

export class LinkBroker {
  #d: BrokerDeps;
  #parked = new Map<string, Parked>();
  #tokenByKey = new Map<string, string>();
  #live = new Set<LinkEnd>();

  constructor(deps: BrokerDeps) {
    this.#d = deps;
    deps.handshakes.onAborted((k) => this.#dropParked(k));
  }

  get parkedCount(): number {
    return this.#parked.size;
  }

  get activeEnds(): number {
    return this.#live.size;
  }

  #newEnd(conn: Deno.Conn, initial: Uint8Array, announce: boolean): LinkEnd {
    const metrics = this.#d.metrics;
    const end = new LinkEnd(
      conn,
      initial,
      this.#d.limits.linkBufferBytes,
      announce,
      (n) => (metrics.linkBytes += n),
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
    const { presence, handshakes, guard, log } = this.#d;
    const key = handshakeKeyOf(frame);
    const relay = raw.slice();
    const end = this.#newEnd(conn, rest, true);
    const token = crypto.randomUUID();
    const endpoint: LinkEndpoint = { node: presence.nodeId, token, bridge: this.#d.bridge.address };
    let accepted: boolean;
    try {
      // A stranger's frame is answered like a miss, but never reaches the handshake.
      if (await guard.admit("accept", key, address) !== null) {
        return end.refuse([encodeError(ErrorCode.TcpNotInProtocol)]);
      }
      accepted = await presence.acceptHandshake(key, endpoint);
    } catch (e) {
      return this.#unavailable(end, e);
    }
    if (!accepted) {
      await guard.miss(key, address);
      return end.refuse([encodeError(ErrorCode.TcpNotInProtocol)]);
    }
    // Whichever comes first (the ttl, or B's socket closing) ends the wait.
    const giveUp = (reason: string) => {
      if (!this.#take(token)) return; // already joined or dropped
      end.close();
      void handshakes.abort(key, reason);
    };
    const timer = unrefTimeout(
      () => giveUp("accepted end not joined in time"),
      this.#d.limits.handshakeTtlMs,
    );
    this.#parked.set(token, { end, key, timer });
    this.#tokenByKey.set(handshakeId(key), token);
    end.start(() => giveUp("accepting end closed"));
    let told: boolean;
    try {
      told = await presence.send(key.a, relay);
    } catch (e) {
      log.debug("could not relay TCPAccept", { error: errorMessage(e) });
      told = false;
    }
    if (!told) {
      // A is gone: nobody will ever connect.
      await handshakes.abort(key, "initiator unreachable");
    }
  }

  /** A's new connection sent TCPConnect as its first frame. */
  async openConnect(
    conn: Deno.Conn,
    frame: TCPConnect,
    rest: Uint8Array,
    address: string,
  ): Promise<void> {
    const { presence, handshakes, guard, log } = this.#d;
    const key = handshakeKeyOf(frame);
    const end = this.#newEnd(conn, rest, true);
    const refusal = [encodeError(ErrorCode.TcpNotInProtocol), abortFrame(key)];
    let endpoint: LinkEndpoint | null;
    try {
      if (await guard.admit("connect", key, address) !== null) return end.refuse(refusal);
      endpoint = await presence.claimHandshake(key);
    } catch (e) {
      return this.#unavailable(end, e, [abortFrame(key)]);
    }
    if (!endpoint) {
      await guard.miss(key, address);
      return end.refuse(refusal);
    }
    end.start();
    const peer = endpoint.node === presence.nodeId
      ? this.#take(endpoint.token)
      : await this.#dial(endpoint);
    if (!peer || peer.isClosed) {
      log.info("private link failed: accepting end is gone", { a: key.a, b: key.b });
      await end.refuse(refusal);
      // The claim consumed the handshake, so there is nothing left to cancel: just tell A and B.
      await handshakes.tellAborted([key]);
      return;
    }
    await pair(end, peer);
    this.#d.metrics.linksOpened++;
    log.info("private link opened", {
      a: key.a,
      b: key.b,
      remote: endpoint.node !== presence.nodeId,
    });
  }

  async #dial(endpoint: LinkEndpoint): Promise<LinkEnd | null> {
    try {
      const { conn, initial } = await dialBridge(endpoint, this.#d.bridge.secret);
      const end = this.#newEnd(conn, initial, false);
      end.start();
      return end;
    } catch (e) {
      this.#d.log.warn("bridge dial failed", {
        node: endpoint.node,
        bridge: endpoint.bridge,
        error: errorMessage(e),
      });
      return null;
    }
  }

  /**
   * Another node dialed our bridge port: check its greeting, then join the
   * parked end its token names to this connection (answer 1), or answer 0
   * if no such end is parked here.
   */
  async acceptBridge(conn: Deno.Conn): Promise<void> {
    const { log, bridge } = this.#d;
    const greeting = await readGreeting(conn, bridge.secret).catch(() => null); // timed out or closed: refused alike
    if (!greeting) {
      log.warn("bridge greeting refused", { address: (conn.remoteAddr as Deno.NetAddr).hostname });
      closeQuietly(conn);
      return;
    }
    const parked = this.#take(greeting.token);
    if (!parked) {
      await writeAll(conn, Uint8Array.of(0)).catch(() => {}); // the answer is a courtesy
      closeQuietly(conn);
      return;
    }
    try {
      await writeAll(conn, Uint8Array.of(1));
    } catch (e) {
      // The dialing node is gone: so is this link. Close B's end rather than leave it parked.
      parked.close();
      closeQuietly(conn);
      throw e;
    }
    const bridgeEnd = this.#newEnd(conn, greeting.initial, false);
    bridgeEnd.start();
    await pair(parked, bridgeEnd);
    this.#d.metrics.linksOpened++;
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
  #dropParked(key: HandshakeKey): void {
    const token = this.#tokenByKey.get(handshakeId(key));
    const end = token === undefined ? null : this.#take(token);
    if (end) void end.refuse([abortFrame(key)]);
  }

  async #unavailable(end: LinkEnd, e: unknown, extra: Uint8Array[] = []): Promise<void> {
    if (!(e instanceof PresenceUnavailable)) throw e;
    this.#d.log.warn("presence unavailable", { op: "link", error: e.message });
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
    // one end is gone before the link began: close both, there is nothing to relay
    x.close();
    y.close();
    return;
  }
  await Promise.all([x.attach(y), y.attach(x)]);
}
