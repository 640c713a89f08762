/**
 * A chat session: the actor that owns one user's state. Frames from the
 * user's socket and frames addressed to the user (from this node's other
 * sessions, or from other nodes through the relay) are both messages in its
 * mailbox, handled one at a time and in order.
 *
 * Where a frame goes is decided here: to a user of this node at once (the
 * node's registry, LocalUsers), else to the relay, which knows the other
 * nodes' users. A one-node chat never touches a presence store to deliver.
 */
import {
  type AnyTcpFrame,
  encodeError,
  ErrorCode,
  type Frame,
  type HandshakeKey,
  handshakeKeyOf,
  OK_FRAME,
  Op,
  readHandshakeKey,
} from "../../protocol/mod.ts";
import {
  type Directory,
  type HandshakeRegistry,
  PresenceUnavailable,
  type Relay,
} from "../../presence/presence.ts";
import type { Logger } from "../../lib/log.ts";
import type { WarnThrottle } from "../../lib/rate.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { Metrics } from "../metrics.ts";
import { abortFrame, type HandshakeAborts } from "../links/aborts.ts";
import { keepFrame, recycleFrame } from "./arena.ts";
import { Mailbox } from "./mailbox.ts";
import { OrderedReplies } from "./replies.ts";
import type { OutboundQueue } from "./outbound.ts";
import { type AskLimits, HandshakeBook } from "./handshake_book.ts";
import { checkPseudo, REFUSAL_TEXT } from "../../protocol/pseudonym.ts";
import { clientKey } from "../links/guard_policy.ts";
import type { LoginTicket } from "../limits/admission.ts";
import type { LocalUser, LocalUsers } from "../local_users.ts";

export type SessionMessage =
  /** A frame from this user's socket; `raw` is valid only while it is handled. */
  | { kind: "frame"; frame: Frame; raw: Uint8Array }
  /**
   * A frame for this user from anyone (already encoded, shared: never mutate).
   * `held`: it waited in the mailbox, charged to the outbound queue meanwhile.
   */
  | { kind: "deliver"; bytes: Uint8Array; held: boolean }
  /** A handshake this user asked for has outlived its ttl. */
  | { kind: "expire"; key: HandshakeKey }
  /** The socket is gone: release everything. */
  | { kind: "closed" };

/** What a session uses of its node. */
export interface SessionDeps {
  /** This node's users: a session logs itself in and out here. */
  users: LocalUsers<ChatSession>;
  /** Who holds which pseudo on every node. */
  directory: Directory;
  handshakes: HandshakeRegistry;
  /** Frames for the users of other nodes. */
  relay: Relay;
  aborts: HandshakeAborts;
  log: Logger;
  /** Warnings a client can cause at will: rate limited. */
  warn: WarnThrottle;
  metrics: Metrics;
  limits: AskLimits;
  /** True once shutdown began: new work is refused. */
  draining: () => boolean;
  /** Logged-in sessions one source address may have. */
  maxSessionsPerAddress: number;
}

const STORE_TTL_GRACE_MS = 5000;
/** Requests of one session waiting on the network before it stops reading its socket. */
const MAX_REPLIES_IN_FLIGHT = 256;

export class ChatSession implements LocalUser {
  #d: SessionDeps;
  #out: OutboundQueue;
  #mailbox: Mailbox<SessionMessage>;
  #pseudo: string | null = null;
  #closed = false;
  /** Made on first use: most sessions never open a private link (memory per idle session). */
  #hsMade: HandshakeBook | null = null;
  readonly address: string;
  #closeConnection: (reason: string) => void;
  #ticket: LoginTicket;
  #replies: OrderedReplies = new OrderedReplies((b) => this.#send(b), MAX_REPLIES_IN_FLIGHT);

  constructor(
    deps: SessionDeps,
    out: OutboundQueue,
    address: string,
    closeConnection: (reason: string) => void,
    ticket: LoginTicket,
  ) {
    this.#d = deps;
    this.#ticket = ticket;
    this.#out = out;
    this.address = address;
    this.#closeConnection = closeConnection;
    this.#mailbox = new Mailbox((m) => this.#handle(m), (e) => {
      deps.log.error("session failed", { pseudo: this.#pseudo, error: errorMessage(e) });
      closeConnection("session error");
    });
  }

  get #hs(): HandshakeBook {
    return this.#hsMade ??= new HandshakeBook(
      this.#d.limits,
      (key) => this.#mailbox.post({ kind: "expire", key }),
    );
  }

  /** Ends the session from outside (its pseudo was lost to another node). */
  evict(reason: string): void {
    this.#d.log.warn("session evicted", { pseudo: this.#pseudo, reason });
    this.#closeConnection(reason);
  }

  get pseudo(): string | null {
    return this.#pseudo;
  }

  get mailbox(): Mailbox<SessionMessage> {
    return this.#mailbox;
  }

  /** A frame for this user, from this node's sessions or from another node. */
  deliver(bytes: Uint8Array): void {
    // Handled at once when the mailbox is idle; when it is busy (a request
    // waits on the network) the frame waits, and counts against the same
    // bound as queued output: over it, this is a slow reader.
    const held = this.#mailbox.busy;
    if (held && !this.#out.hold(bytes.length)) return;
    this.#mailbox.post({ kind: "deliver", bytes, held });
  }

  post(m: SessionMessage): void {
    this.#mailbox.post(m);
  }

  #send(bytes: Uint8Array): void {
    this.#d.metrics.countOut(bytes);
    this.#out.push(bytes);
  }

  /** An ERROR reply to this user's own request: ordered behind replies still in flight. */
  #reply(code: number): void {
    this.#replies.now(encodeError(code));
  }

  /** The request succeeded (ERROR 1). */
  #ok(): void {
    this.#replies.now(OK_FRAME);
  }

  /** Resolves when every reply to requests handled so far has been queued. */
  settled(): Promise<void> {
    return this.#replies.settled();
  }

  #handle(m: SessionMessage): void | Promise<void> {
    switch (m.kind) {
      case "deliver":
        if (m.held) this.#out.unhold(m.bytes.length);
        return this.#onDelivery(m.bytes);
      case "frame":
        if (this.#closed) return;
        this.#d.metrics.framesIn[m.frame.op]++;
        return this.#onFrame(m.frame, m.raw);
      case "expire":
        this.#hs.expired(m.key);
        return void this.#d.aborts.abort(m.key, "expired");
      case "closed":
        return this.#onClosed();
    }
  }

  #onDelivery(bytes: Uint8Array): void {
    if (this.#closed) {
      // An ask that reached this user while it was leaving: aborted, as its leave would have.
      if (this.#pseudo !== null) this.#d.aborts.undelivered(this.#pseudo, bytes);
      return;
    }
    const op = bytes[0];
    if (op === Op.TCPAsk || op === Op.TCPAbort || op === Op.TCPAccept) {
      // Keeps the handshakes this user is part of, so a disconnect can abort them.
      const key = readHandshakeKey(bytes);
      if (key) {
        this.#hs.delivered(op, key, this.#pseudo);
        if (op === Op.TCPAbort) this.#d.aborts.ended(key);
      }
    }
    this.#send(bytes);
  }

  #onFrame(frame: Frame, raw: Uint8Array): void | Promise<void> {
    if (frame.op === Op.CR) return this.#onCR(frame.pseudo);
    if (frame.op === Op.ERROR) return; // clients have nothing to report to the server
    const me = this.#pseudo;
    if (me === null) return this.#reply(ErrorCode.NotConnected);
    // Draining: take no new work, so nothing is acknowledged that could be lost.
    if (this.#d.draining() && frame.op !== Op.TCPAbort) {
      return this.#reply(ErrorCode.ServiceUnavailable);
    }
    switch (frame.op) {
      case Op.SPM:
        if (frame.sender !== me) return this.#reply(ErrorCode.InvalidPseudonym);
        return this.#onSPM(frame.recipient, keepFrame(raw));
      case Op.SMA:
        if (frame.sender !== me) return this.#reply(ErrorCode.InvalidPseudonym);
        // Its own buffer, not a carved one: every recipient writes these same
        // bytes, and a carved view would be copied out once per recipient.
        return this.#onSMA(me, raw.slice());
      case Op.TCPAsk:
        return this.#onAsk(frame, keepFrame(raw));
      case Op.TCPAbort:
        return this.#onAbort(frame);
      case Op.TCPAccept:
      case Op.TCPConnect:
        // These open a private end and belong on a new connection.
        return this.#reply(ErrorCode.TcpNotInProtocol);
    }
  }

  async #onCR(typed: string): Promise<void> {
    if (this.#pseudo !== null) return; // RFC: a second CR is ignored
    const name = checkPseudo(typed);
    if (!name.ok) {
      this.#d.log.debug("pseudo refused", {
        address: this.address,
        reason: REFUSAL_TEXT[name.reason],
      });
      return this.#reply(ErrorCode.InvalidPseudonym);
    }
    if (this.#d.draining()) return this.#reply(ErrorCode.ServiceUnavailable);
    if (!this.#ticket.claimSession(this.#d.maxSessionsPerAddress)) {
      this.#d.metrics.refuse("sessions_per_address");
      return this.#reply(ErrorCode.ServiceUnavailable);
    }
    // Others see the name as typed (NFC); uniqueness is on its keys.
    const pseudo = name.display;
    const { users } = this.#d;
    const claim = { keys: name.keys, client: clientKey(this.address) };
    let result;
    try {
      result = await users.login(pseudo, claim, this, this.#d);
    } catch (e) {
      this.#ticket.dropSession();
      return this.#unavailable("CR", e);
    }
    if (result === "taken") {
      this.#ticket.dropSession();
      return this.#reply(ErrorCode.PseudoUnavailable);
    }
    if (this.#closed) {
      // The socket went away while we waited: give the pseudo straight back.
      await users.logout(pseudo, this, this.#d).catch((e) =>
        this.#d.log.warn("could not release pseudo", { pseudo, error: errorMessage(e) })
      );
      return;
    }
    this.#pseudo = pseudo;
    this.#d.log.info("login", { pseudo, address: this.address });
    this.#ok();
  }

  #unavailable(what: string, e: unknown): void {
    this.#reply(this.#unavailableCode(what, e));
  }

  /** ERROR 9 for a store that cannot answer; anything else is a bug, logged as one. */
  #unavailableCode(what: string, e: unknown): number {
    if (e instanceof PresenceUnavailable) {
      this.#d.log.warn("presence unavailable", { op: what, error: e.message });
    } else {
      this.#d.log.error("presence failed", { op: what, error: errorMessage(e) });
    }
    return ErrorCode.ServiceUnavailable;
  }

  #onSPM(to: string, bytes: Uint8Array): void | Promise<void> {
    // A user of this node: delivered at once, no promise, no extra turn, per message.
    if (this.#d.users.send(to, bytes)) return this.#ok();
    // Anyone else is another node's user, or nobody: the relay tells which.
    let sent;
    try {
      sent = this.#d.relay.send(to, bytes);
    } catch (e) {
      return this.#unavailable("SPM", e);
    }
    if (!(sent instanceof Promise)) {
      if (sent) return this.#ok();
      // Nobody took the copy: a client flooding a user who left (a slow reader
      // dropped, say) must not leave a dead 32 KiB buffer per message.
      recycleFrame(bytes);
      return this.#reply(ErrorCode.UnreachableUser);
    }
    return this.#replies.later(sent.then(
      (ok) => [ok ? OK_FRAME : encodeError(ErrorCode.UnreachableUser)],
      (e) => [encodeError(this.#unavailableCode("SPM", e))],
    ));
  }

  #onSMA(me: string, bytes: Uint8Array): void | Promise<void> {
    const { users, relay } = this.#d;
    // ERROR 9 means nobody got it: while frames cannot leave this node, not even its own users.
    if (!relay.available) {
      return this.#unavailable("SMA", new PresenceUnavailable("redis unreachable"));
    }
    // This node's users at once; the relay takes it to the other nodes'.
    const here = users.fanOut(bytes, me);
    let done;
    try {
      done = relay.broadcast(bytes, me);
    } catch (e) {
      return here > 0 ? this.#reply(this.#lostOnTheWay(e)) : this.#unavailable("SMA", e);
    }
    if (!(done instanceof Promise)) return this.#ok();
    return this.#replies.later(done.then(
      () => [OK_FRAME],
      (e) =>
        here > 0
          ? [encodeError(this.#lostOnTheWay(e))]
          : [encodeError(this.#unavailableCode("SMA", e))],
    ));
  }

  /**
   * A broadcast this node's users got and the other nodes' did not (Redis failed on the way):
   * answered OK, for it was delivered, and the loss counted and logged (rate-limited).
   */
  #lostOnTheWay(e: unknown): number {
    this.#d.metrics.broadcastsLost++;
    this.#d.warn.warn("a broadcast reached this node's users only", { error: errorMessage(e) });
    return ErrorCode.OK;
  }

  async #onAsk(frame: AnyTcpFrame, bytes: Uint8Array): Promise<void> {
    const refuse = (code: number) => this.#replies.now(encodeError(code), abortFrame(key));
    const key = handshakeKeyOf(frame);
    if (key.a !== this.#pseudo) return refuse(ErrorCode.InvalidPseudonym);
    if (!this.#hs.mayAsk(key)) return refuse(ErrorCode.TcpInProtocol);
    const { handshakes, users, relay } = this.#d;
    try {
      // The store's expiry is only a backstop (e.g. for a node that died):
      // this actor's timer is what aborts a handshake on time and tells both.
      const backstopMs = this.#d.limits.handshakeTtlMs + STORE_TTL_GRACE_MS;
      if (!await handshakes.open(key, backstopMs)) {
        return refuse(ErrorCode.TcpInProtocol);
      }
      // Registered before B hears of it, so B's answer always finds it.
      if (!users.send(key.b, bytes) && !await relay.send(key.b, bytes)) {
        await handshakes.cancel(key);
        return refuse(ErrorCode.UnreachableUser);
      }
    } catch (e) {
      // The open may have run (a timeout is not a "no"), or ran and B was not told: drop it.
      void this.#d.aborts.abort(key, "ask failed", { except: key.a });
      return this.#replies.now(encodeError(this.#unavailableCode("TCPAsk", e)), abortFrame(key));
    }
    this.#hs.asked(key);
    this.#ok();
  }

  async #onAbort(frame: AnyTcpFrame): Promise<void> {
    const key = handshakeKeyOf(frame);
    // B declines; A may also withdraw its own request.
    if (key.b !== this.#pseudo && key.a !== this.#pseudo) {
      return this.#reply(ErrorCode.InvalidPseudonym);
    }
    if (!await this.#d.aborts.abort(key, "declined")) {
      this.#reply(ErrorCode.TcpNotInProtocol);
    }
  }

  async #onClosed(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pseudo = this.#pseudo;
    if (pseudo === null) return;
    const { users, aborts, log } = this.#d;
    // Abort this user's handshakes while the pseudo is still ours, and tell
    // only the other side: once it is released, a TCPAbort addressed to it
    // would reach its next holder.
    for (const k of this.#hsMade?.takeAll() ?? []) {
      await aborts.abort(k, `${pseudo} left`, { except: pseudo });
    }
    try {
      // While draining, the store was closed and released everyone already: this is local only.
      await users.logout(pseudo, this, this.#d);
    } catch (e) {
      log.warn("could not release pseudo", { pseudo, error: errorMessage(e) });
    }
    log.info("logout", { pseudo });
  }
}
