/**
 * A chat session: the actor that owns one user's state. Frames from the
 * user's socket and frames addressed to the user (from presence) are both
 * messages in its mailbox, handled one at a time and in order.
 */
import {
  type AnyTcpFrame,
  encodeError,
  ErrorCode,
  type Frame,
  FrameDecoder,
  type HandshakeKey,
  handshakeKeyOf,
  OK_FRAME,
  Op,
} from "../protocol/mod.ts";
import { handshakeId, type Inbox, PresenceUnavailable } from "../presence/presence.ts";
import { abortFrame } from "./handshakes.ts";
import type { ServerContext } from "./context.ts";
import { keepFrame } from "./arena.ts";
import { Mailbox } from "./mailbox.ts";
import { OrderedReplies } from "./replies.ts";
import { clearTimer, type TimerId, unrefTimeout } from "../lib/timers.ts";
import type { OutboundQueue } from "./outbound.ts";

export type SessionMessage =
  /** A frame from this user's socket; `raw` is valid only while it is handled. */
  | { kind: "frame"; frame: Frame; raw: Uint8Array }
  /** A frame for this user from anyone (already encoded, shared: never mutate). */
  | { kind: "deliver"; bytes: Uint8Array }
  /** A handshake this user asked for has outlived its ttl. */
  | { kind: "expire"; key: HandshakeKey }
  /** The socket is gone: release everything. */
  | { kind: "closed" };

const STORE_TTL_GRACE_MS = 5000;
/** Requests of one session waiting on the network before it stops reading its socket. */
const MAX_REPLIES_IN_FLIGHT = 256;

/** Valid pseudonyms: 1 to 32 letters, digits, `_`, `-` or `.` (any script). */
const PSEUDO = /^[\p{L}\p{N}_.-]{1,32}$/u;
export function validPseudo(p: string): boolean {
  return PSEUDO.test(p);
}

interface Asked {
  key: HandshakeKey;
  timer: TimerId;
  /** B has answered (TCPAccept or TCPAbort reached A): no longer counts toward the limit. */
  answered: boolean;
}

export class ChatSession implements Inbox {
  #ctx: ServerContext;
  #out: OutboundQueue;
  #mailbox: Mailbox<SessionMessage>;
  #pseudo: string | null = null;
  #closed = false;
  // Created on first use: most sessions never touch a private connection,
  // and idle sessions are what the per-session memory budget is about.
  #askedMap: Map<string, Asked> | null = null;
  #invitedMap: Map<string, HandshakeKey> | null = null;
  /** Handshakes this user started (as A), by id. */
  get #asked(): Map<string, Asked> {
    return (this.#askedMap ??= new Map());
  }
  /** Handshakes offered to this user (as B), by id. */
  get #invited(): Map<string, HandshakeKey> {
    return (this.#invitedMap ??= new Map());
  }
  readonly address: string;
  #closeConnection: (reason: string) => void;
  #replies: OrderedReplies = new OrderedReplies((b) => this.#send(b), MAX_REPLIES_IN_FLIGHT);

  constructor(
    ctx: ServerContext,
    out: OutboundQueue,
    address: string,
    closeConnection: (reason: string) => void,
  ) {
    this.#ctx = ctx;
    this.#out = out;
    this.address = address;
    this.#closeConnection = closeConnection;
    this.#mailbox = new Mailbox((m) => this.#handle(m), (e) => {
      ctx.log.error("session failed", { pseudo: this.#pseudo, error: String(e) });
      closeConnection("session error");
    });
  }

  /** Ends the session from outside (its pseudo was lost to another node). */
  evict(reason: string): void {
    this.#ctx.log.warn("session evicted", { pseudo: this.#pseudo, reason });
    this.#closeConnection(reason);
  }

  get pseudo(): string | null {
    return this.#pseudo;
  }

  get mailbox(): Mailbox<SessionMessage> {
    return this.#mailbox;
  }

  /** Inbox: presence hands frames for this user here. */
  deliver(bytes: Uint8Array): void {
    this.#mailbox.post({ kind: "deliver", bytes });
  }

  post(m: SessionMessage): void {
    this.#mailbox.post(m);
  }

  #send(bytes: Uint8Array): void {
    this.#ctx.metrics.countOut(bytes);
    this.#out.push(bytes);
  }

  /** A reply to this user's own request: ordered behind replies still in flight. */
  #error(code: number): void {
    this.#replies.now(encodeError(code));
  }

  /** Resolves when every reply to requests handled so far has been queued. */
  settled(): Promise<void> {
    return this.#replies.settled();
  }

  #handle(m: SessionMessage): void | Promise<void> {
    switch (m.kind) {
      case "deliver":
        return this.#onDelivery(m.bytes);
      case "frame":
        if (this.#closed) return;
        this.#ctx.metrics.framesIn[m.frame.op]++;
        return this.#onFrame(m.frame, m.raw);
      case "expire":
        this.#asked.delete(handshakeId(m.key));
        return void this.#ctx.handshakes.abort(m.key, "expired");
      case "closed":
        return this.#onClosed();
    }
  }

  #onDelivery(bytes: Uint8Array): void {
    if (this.#closed) return;
    const op = bytes[0];
    if (op === Op.TCPAsk || op === Op.TCPAbort || op === Op.TCPAccept) {
      this.#track(op, bytes);
    }
    this.#send(bytes);
  }

  /** Keeps the handshakes this user is part of, so a disconnect can abort them. */
  #track(op: number, bytes: Uint8Array): void {
    const key = decodeTcpKey(bytes);
    const id = handshakeId(key);
    if (op === Op.TCPAsk && key.b === this.#pseudo) this.#invited.set(id, key);
    if (op === Op.TCPAbort) {
      this.#invited.delete(id);
      const asked = this.#asked.get(id);
      if (asked) {
        clearTimer(asked.timer);
        this.#asked.delete(id);
      }
      this.#ctx.handshakes.dropParked(key);
    }
    if (op === Op.TCPAccept) {
      const asked = this.#asked.get(id);
      if (asked) asked.answered = true;
    }
  }

  #onFrame(frame: Frame, raw: Uint8Array): void | Promise<void> {
    if (frame.op === Op.CR) return this.#onCR(frame.pseudo);
    if (frame.op === Op.ERROR) return; // clients have nothing to report to the server
    const me = this.#pseudo;
    if (me === null) return this.#error(ErrorCode.NotConnected);
    // Draining: take no new work, so nothing is acknowledged that could be lost.
    if (this.#ctx.draining && frame.op !== Op.TCPAbort) {
      return this.#error(ErrorCode.ServiceUnavailable);
    }
    switch (frame.op) {
      case Op.SPM:
        if (frame.sender !== me) return this.#error(ErrorCode.InvalidPseudonym);
        return this.#onSPM(frame.recipient, keepFrame(raw));
      case Op.SMA:
        if (frame.sender !== me) return this.#error(ErrorCode.InvalidPseudonym);
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
        return this.#error(ErrorCode.TcpNotInProtocol);
    }
  }

  async #onCR(pseudo: string): Promise<void> {
    if (this.#pseudo !== null) return; // RFC: a second CR is ignored
    if (!validPseudo(pseudo)) return this.#error(ErrorCode.InvalidPseudonym);
    if (this.#ctx.draining) return this.#error(ErrorCode.ServiceUnavailable);
    let result;
    try {
      result = await this.#ctx.presence.reserve(pseudo, this);
    } catch (e) {
      return this.#unavailable("CR", e);
    }
    if (result === "taken") return this.#error(ErrorCode.PseudoUnavailable);
    if (this.#closed) {
      // The socket went away while we waited: give the pseudo straight back.
      await this.#ctx.presence.release(pseudo, this).catch(() => {});
      return;
    }
    this.#pseudo = pseudo;
    this.#ctx.sessions.set(pseudo, this);
    this.#ctx.log.info("login", { pseudo, address: this.address });
    this.#error(ErrorCode.OK);
  }

  #unavailable(what: string, e: unknown): void {
    this.#error(this.#unavailableCode(what, e));
  }

  /** ERROR 9 for a store that cannot answer; anything else is a bug, logged as one. */
  #unavailableCode(what: string, e: unknown): number {
    if (e instanceof PresenceUnavailable) {
      this.#ctx.log.warn("presence unavailable", { op: what, error: e.message });
    } else {
      this.#ctx.log.error("presence failed", { op: what, error: String(e) });
    }
    return ErrorCode.ServiceUnavailable;
  }

  #onSPM(to: string, bytes: Uint8Array): void | Promise<void> {
    let sent;
    try {
      sent = this.#ctx.presence.send(to, bytes);
    } catch (e) {
      return this.#unavailable("SPM", e);
    }
    // A local recipient answers at once: no promise, no extra turn, per message.
    if (!(sent instanceof Promise)) {
      return this.#error(sent ? ErrorCode.OK : ErrorCode.UnreachableUser);
    }
    return this.#replies.later(sent.then(
      (ok) => [encodeError(ok ? ErrorCode.OK : ErrorCode.UnreachableUser)],
      (e) => [encodeError(this.#unavailableCode("SPM", e))],
    ));
  }

  #onSMA(me: string, bytes: Uint8Array): void | Promise<void> {
    let done;
    try {
      done = this.#ctx.presence.broadcast(bytes, me);
    } catch (e) {
      return this.#unavailable("SMA", e);
    }
    if (!(done instanceof Promise)) return this.#error(ErrorCode.OK);
    return this.#replies.later(done.then(
      () => [OK_FRAME],
      (e) => [encodeError(this.#unavailableCode("SMA", e))],
    ));
  }

  async #onAsk(frame: AnyTcpFrame, bytes: Uint8Array): Promise<void> {
    const refuse = (code: number) => this.#replies.now(encodeError(code), abortFrame(key));
    const key = handshakeKeyOf(frame);
    if (key.a !== this.#pseudo) return refuse(ErrorCode.InvalidPseudonym);
    const id = handshakeId(key);
    let unanswered = 0;
    for (const a of this.#asked.values()) if (!a.answered) unanswered++;
    if (this.#asked.has(id) || unanswered >= this.#ctx.config.maxPendingAsks) {
      return refuse(ErrorCode.TcpInProtocol);
    }
    const presence = this.#ctx.presence;
    try {
      // The store's expiry is only a backstop (e.g. for a node that died):
      // this actor's timer is what aborts a handshake on time and tells both.
      const backstopMs = this.#ctx.config.handshakeTtlMs + STORE_TTL_GRACE_MS;
      if (!await presence.openHandshake(key, backstopMs)) {
        return refuse(ErrorCode.TcpInProtocol);
      }
      // Registered before B hears of it, so B's answer always finds it.
      if (!await presence.send(key.b, bytes)) {
        await presence.cancelHandshake(key);
        return refuse(ErrorCode.UnreachableUser);
      }
    } catch (e) {
      return this.#replies.now(encodeError(this.#unavailableCode("TCPAsk", e)), abortFrame(key));
    }
    if (this.#closed) return void this.#ctx.handshakes.abort(key, "initiator left");
    const timer = unrefTimeout(
      () => this.#mailbox.post({ kind: "expire", key }),
      this.#ctx.config.handshakeTtlMs,
    );
    this.#asked.set(id, { key, timer, answered: false });
    this.#error(ErrorCode.OK);
  }

  async #onAbort(frame: AnyTcpFrame): Promise<void> {
    const key = handshakeKeyOf(frame);
    // B declines; A may also withdraw its own request.
    if (key.b !== this.#pseudo && key.a !== this.#pseudo) {
      return this.#error(ErrorCode.InvalidPseudonym);
    }
    if (!await this.#ctx.handshakes.abort(key, "declined")) {
      this.#error(ErrorCode.TcpNotInProtocol);
    }
  }

  async #onClosed(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pseudo = this.#pseudo;
    if (pseudo === null) return;
    if (this.#ctx.sessions.get(pseudo) === this) this.#ctx.sessions.delete(pseudo);
    for (const a of this.#asked.values()) clearTimer(a.timer);
    const keys = [...this.#asked.values()].map((a) => a.key).concat([...this.#invited.values()]);
    this.#asked.clear();
    this.#invited.clear();
    try {
      // While draining, presence was closed and released everyone already.
      if (!this.#ctx.draining) await this.#ctx.presence.release(pseudo, this);
    } catch (e) {
      this.#ctx.log.warn("could not release pseudo", { pseudo, error: String(e) });
    }
    for (const k of keys) await this.#ctx.handshakes.abort(k, `${pseudo} left`);
    this.#ctx.log.info("logout", { pseudo });
  }
}

/** The (A, B, password) of a TCP frame's bytes, which are known to be well formed. */
function decodeTcpKey(bytes: Uint8Array): HandshakeKey {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const step = decoder.next();
  if (!step?.ok || !("password" in step.frame)) throw new Error("not a TCP frame");
  return handshakeKeyOf(step.frame);
}
