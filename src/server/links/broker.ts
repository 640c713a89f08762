/**
 * The private-link broker of one node. B's TCPAccept parks B's new socket
 * here under a random token and records {node, token, bridge} in the handshake registry;
 * A's TCPConnect claims that record and joins A's socket to B's, directly
 * when both landed on this node, or through a node-to-node bridge otherwise
 * (this node dials the other's bridge port, or answers a dial on its own).
 */
import {
  encodeError,
  ErrorCode,
  handshakeId,
  type HandshakeKey,
  handshakeKeyOf,
  type TCPAccept,
  type TCPConnect,
} from "../../protocol/mod.ts";
import {
  type HandshakeRegistry,
  type LinkEndpoint,
  PresenceUnavailable,
  type Relay,
} from "../../presence/presence.ts";
import type { LocalUsers } from "../local_users.ts";
import type { Logger } from "../../lib/log.ts";
import { writeAll } from "../../lib/async.ts";
import { closeQuietly, errorMessage } from "../../lib/errors.ts";
import { clearTimer, type TimerId, unrefInterval, unrefTimeout } from "../../lib/timers.ts";
import type { Metrics } from "../metrics.ts";
import { abortFrame, type HandshakeAborts } from "./aborts.ts";
import type { LinkGuard } from "./guard.ts";
import type { LinkRole } from "./guard_policy.ts";
import { LinkEnd } from "./end.ts";
import { dialBridge, readGreeting } from "./bridge.ts";
import type { WarnThrottle } from "../../lib/rate.ts";
import type { FdBudget, Slot } from "../limits/fd_budget.ts";

export interface LinkLimits {
  linkBufferBytes: number;
  handshakeTtlMs: number;
  /** Parked ends plus open links of one user on this node. */
  maxLinksPerUser: number;
  /** A link with no byte either way for this long is closed; 0: never. */
  linkIdleMs: number;
  bridgeMaxGreetings: number;
  bridgeGreetingMs: number;
}

export interface BrokerDeps {
  /** This node's id: an endpoint on it is joined here, without a bridge. */
  nodeId: string;
  handshakes: HandshakeRegistry;
  /** Where B's TCPAccept is relayed to A: on this node, else through the relay. */
  users: LocalUsers;
  relay: Relay;
  aborts: HandshakeAborts;
  guard: LinkGuard;
  log: Logger;
  /** Warnings a client or a stranger on the bridge port can cause at will: rate limited. */
  warn: WarnThrottle;
  metrics: Metrics;
  /** Sockets this broker opens (bridge dials) take their descriptor from here. */
  budget: FdBudget;
  limits: LinkLimits;
  /** This node's bridge address ("" when single-node) and the secret that authenticates bridges. */
  bridge: { address: string; secret: string };
}

interface Parked {
  end: LinkEnd;
  key: HandshakeKey;
  timer: TimerId;
}

interface Link {
  x: LinkEnd;
  y: LinkEnd;
}

/** A private end past the guard and its user's cap: what opening it goes on with. */
interface Opened {
  key: HandshakeKey;
  end: LinkEnd;
  /** What follows the ERROR when this end is refused: A's TCPAbort; nothing for B. */
  tail: Uint8Array[];
}

export class LinkBroker {
  #d: BrokerDeps;
  #parked = new Map<string, Parked>();
  #tokenByKey = new Map<string, string>();
  #live = new Set<LinkEnd>();
  /** Parked ends plus open links, per user, on this node. */
  #perUser = new Map<string, number>();
  #links = new Set<Link>();
  #idleSweep: TimerId | undefined;
  /** Bridge connections that have not authenticated yet. */
  #greeting = 0;

  constructor(deps: BrokerDeps) {
    this.#d = deps;
    deps.aborts.onAborted((k) => this.#dropParked(k));
  }

  /** Counts one parked end or link for each of `users`, or false if one of them is at the cap. */
  #count(users: string[]): (() => void) | null {
    const max = this.#d.limits.maxLinksPerUser;
    if (users.some((u) => (this.#perUser.get(u) ?? 0) >= max)) {
      this.#d.metrics.refuse("links_per_user");
      this.#d.warn.warn("private link refused: user at --max-links-per-user", { users });
      return null;
    }
    for (const u of users) this.#perUser.set(u, (this.#perUser.get(u) ?? 0) + 1);
    let counted = true;
    return () => {
      if (!counted) return;
      counted = false;
      for (const u of users) {
        const n = (this.#perUser.get(u) ?? 1) - 1;
        if (n === 0) this.#perUser.delete(u);
        else this.#perUser.set(u, n);
      }
    };
  }

  /**
   * Counts `end` for `user` until it closes: B's parked end and the link it
   * becomes, A's connecting end and its link. Null (counted as refused) if
   * the user is at the cap.
   */
  #countEnd(user: string, end: LinkEnd): boolean {
    const uncount = this.#count([user]);
    if (uncount) void end.closed.then(uncount);
    return uncount !== null;
  }

  /** Joins two ends; an idle limit applies to the link from here. */
  async #pair(x: LinkEnd, y: LinkEnd): Promise<void> {
    const link = { x, y };
    this.#links.add(link);
    void Promise.all([x.closed, y.closed]).then(() => this.#links.delete(link));
    this.#watchIdle();
    await pair(x, y);
  }

  /** With --link-idle-ms, a sweep closes links with no byte either way for that long. */
  #watchIdle(): void {
    const idleMs = this.#d.limits.linkIdleMs;
    if (idleMs === 0 || this.#idleSweep !== undefined) return;
    this.#idleSweep = unrefInterval(() => {
      const before = performance.now() - idleMs;
      for (const l of this.#links) {
        if (l.x.lastActive < before && l.y.lastActive < before) {
          this.#d.metrics.linksIdleClosed++;
          l.x.close();
          l.y.close();
        }
      }
      if (this.#links.size === 0) {
        clearTimer(this.#idleSweep);
        this.#idleSweep = undefined;
      }
    }, Math.max(10, idleMs / 4));
  }

  get parkedCount(): number {
    return this.#parked.size;
  }

  get activeEnds(): number {
    return this.#live.size;
  }

  #newEnd(conn: Deno.Conn, initial: Uint8Array, announce: boolean, slot: Slot): LinkEnd {
    const metrics = this.#d.metrics;
    const end = new LinkEnd(
      conn,
      initial,
      this.#d.limits.linkBufferBytes,
      announce,
      (n) => (metrics.linkBytes += n),
    );
    this.#live.add(end);
    void end.closed.then(() => {
      this.#live.delete(end);
      slot.release();
    });
    return end;
  }

  /** B's new connection sent TCPAccept as its first frame. */
  async openAccept(
    conn: Deno.Conn,
    frame: TCPAccept,
    raw: Uint8Array,
    rest: Uint8Array,
    address: string,
    slot: Slot,
  ): Promise<void> {
    const { nodeId, handshakes, users, relay, aborts, guard, log } = this.#d;
    const accept = raw.slice(); // a copy: `raw` views the connection's read buffer
    const opened = await this.#open("accept", conn, frame, rest, address, slot);
    if (!opened) return;
    const { key, end } = opened;
    const token = crypto.randomUUID();
    const endpoint: LinkEndpoint = { node: nodeId, token, bridge: this.#d.bridge.address };
    let accepted: boolean;
    try {
      accepted = await handshakes.accept(key, endpoint);
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
      void aborts.abort(key, reason);
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
      told = users.send(key.a, accept) || await relay.send(key.a, accept);
    } catch (e) {
      log.debug("could not relay TCPAccept", { error: errorMessage(e) });
      told = false;
    }
    if (!told) {
      // A is gone: nobody will ever connect.
      await aborts.abort(key, "initiator unreachable");
    }
  }

  /** A's new connection sent TCPConnect as its first frame. */
  async openConnect(
    conn: Deno.Conn,
    frame: TCPConnect,
    rest: Uint8Array,
    address: string,
    slot: Slot,
  ): Promise<void> {
    const { nodeId, handshakes, aborts, guard, log } = this.#d;
    const opened = await this.#open("connect", conn, frame, rest, address, slot);
    if (!opened) return;
    const { key, end, tail } = opened;
    const refusal = [encodeError(ErrorCode.TcpNotInProtocol), ...tail];
    let endpoint: LinkEndpoint | null;
    try {
      endpoint = await handshakes.claim(key);
    } catch (e) {
      return this.#unavailable(end, e, tail);
    }
    if (!endpoint) {
      await guard.miss(key, address);
      return end.refuse(refusal);
    }
    end.start();
    const peer = endpoint.node === nodeId ? this.#take(endpoint.token) : await this.#dial(endpoint);
    if (!peer || peer.isClosed) {
      log.info("private link failed: the accepting end is gone or unreachable", {
        a: key.a,
        b: key.b,
      });
      await end.refuse(refusal);
      // The claim consumed the handshake, so there is nothing left to cancel: just tell A and B.
      await aborts.tellAborted([key]);
      return;
    }
    await this.#pair(end, peer);
    this.#d.metrics.linksOpened++;
    log.info("private link opened", {
      a: key.a,
      b: key.b,
      remote: endpoint.node !== nodeId,
    });
  }

  /**
   * How opening either end begins: the end itself, the guard's word, then a
   * place under its user's cap (B for TCPAccept, A for TCPConnect). Null
   * when refused: its client has been answered.
   */
  async #open(
    role: LinkRole,
    conn: Deno.Conn,
    frame: TCPAccept | TCPConnect,
    rest: Uint8Array,
    address: string,
    slot: Slot,
  ): Promise<Opened | null> {
    const key = handshakeKeyOf(frame);
    const end = this.#newEnd(conn, rest, true, slot);
    const tail = role === "connect" ? [abortFrame(key)] : [];
    // A stranger's frame is answered like a miss, but never reaches the handshake, nor the cap.
    try {
      if (await this.#d.guard.admit(role, key, address) !== null) {
        await end.refuse([encodeError(ErrorCode.TcpNotInProtocol), ...tail]);
        return null;
      }
    } catch (e) {
      await this.#unavailable(end, e, tail);
      return null;
    }
    // The user's parked ends and links count against its cap from here until they end.
    const user = role === "accept" ? key.b : key.a;
    if (!this.#countEnd(user, end)) {
      await end.refuse([encodeError(ErrorCode.TcpNotInProtocol), abortFrame(key)]);
      const reason = role === "accept"
        ? "accepting user at its link cap"
        : "initiator at its link cap";
      await this.#d.aborts.abort(key, reason);
      return null;
    }
    return { key, end, tail };
  }

  async #dial(endpoint: LinkEndpoint): Promise<LinkEnd | null> {
    const slot = this.#d.budget.tryAcquire("bridge");
    if (!slot) {
      this.#d.metrics.refuse("fd_budget");
      this.#d.warn.warn("bridge dial refused: descriptor budget spent", {});
      return null;
    }
    try {
      const { bridge, limits } = this.#d;
      const { conn, initial } = await dialBridge(endpoint, bridge.secret, limits.bridgeGreetingMs);
      const end = this.#newEnd(conn, initial, false, slot);
      end.start();
      return end;
    } catch (e) {
      slot.release();
      this.#d.log.warn("bridge dial failed", {
        peer: endpoint.node, // `node` is this node's, in every line
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
  async acceptBridge(conn: Deno.Conn, slot: Slot): Promise<void> {
    const { warn, bridge, limits, metrics } = this.#d;
    const address = (conn.remoteAddr as Deno.NetAddr).hostname;
    const refuse = () => {
      closeQuietly(conn);
      slot.release();
    };
    if (this.#greeting >= limits.bridgeMaxGreetings) {
      metrics.refuse("bridge_greetings");
      warn.warn("bridge connection refused: too many greetings at once", { address });
      return refuse();
    }
    this.#greeting++;
    let greeting;
    try {
      // Timed out, closed or forged: refused alike, each with its reason.
      greeting = await readGreeting(conn, bridge.secret, limits.bridgeGreetingMs)
        .catch((e) => ({ refused: errorMessage(e) }));
    } finally {
      this.#greeting--;
    }
    if ("refused" in greeting) {
      metrics.refuse("bad_bridge_greeting");
      warn.warn("bridge greeting refused", { from: address, reason: greeting.refused });
      return refuse();
    }
    const parked = this.#take(greeting.token);
    if (!parked) {
      await writeAll(conn, Uint8Array.of(0)).catch(() => {}); // the answer is a courtesy
      return refuse();
    }
    try {
      await writeAll(conn, Uint8Array.of(1));
    } catch (e) {
      // The dialing node is gone: so is this link. Close B's end rather than leave it parked.
      parked.close();
      refuse();
      throw e;
    }
    const bridgeEnd = this.#newEnd(conn, greeting.initial, false, slot);
    bridgeEnd.start();
    await this.#pair(parked, bridgeEnd);
    metrics.linksOpened++;
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
    clearTimer(this.#idleSweep);
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
