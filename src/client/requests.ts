/**
 * Request/reply matching on a chat connection. The server answers each SPM,
 * SMA, TCPAsk and TCPAbort (decline) with one ERROR frame, in the order they
 * were sent; it sends no id. `Requests` keeps that order, the private-link
 * asks in flight both ways, and turns every received frame into a
 * `ChatEvent` that says what it means for this user. It renders nothing:
 * the CLI's view does.
 */

import {
  type AnyTcpFrame,
  EncodeError,
  type Frame,
  handshakeId,
  handshakeKeyOf,
  Op,
  type TCPAsk,
} from "../protocol/mod.ts";
import type { ChatClient } from "./client.ts";

/** What an ERROR (or, for a decline, a TCPAbort) from the server answers, in send order. */
export type Request =
  /** `bytes`: the message's UTF-8 length. */
  | { kind: "spm"; to: string; bytes: number }
  | { kind: "sma"; bytes: number }
  | { kind: "ask"; to: string; password: number; file: string; aborted: boolean }
  | { kind: "decline"; ask: TCPAsk };

/** A private-connection request this user made (as A). */
export interface OutgoingAsk {
  to: string;
  password: number;
  file: string;
  accepted: boolean;
  /** When it was sent (ms since the epoch). */
  askedAt: number;
}

/** What a received frame means for this user. */
export type ChatEvent =
  | { kind: "public"; from: string; text: string }
  | { kind: "private"; from: string; to: string; text: string }
  /** Someone asks us (B) for a private connection; `pending` counts the asks now waiting. */
  | { kind: "asked"; ask: TCPAsk; pending: number }
  /** Their ask went away before we answered. */
  | { kind: "withdrawn"; from: string }
  /** The server confirmed our decline. */
  | { kind: "declined"; from: string }
  /** B accepted our ask: open our end (TCPConnect) now. */
  | { kind: "accepted"; ask: OutgoingAsk }
  /**
   * Our ask ended with a TCPAbort after its ERROR 1: declined, expired
   * (the same frame; `afterMs` tells them apart), or aborted after accepting.
   */
  | { kind: "ask-ended"; to: string; accepted: boolean; afterMs: number }
  /** The ERROR answering a request we sent. */
  | { kind: "reply"; request: Request; code: number }
  /** An ERROR that answers nothing we sent. */
  | { kind: "stray-error"; code: number }
  | { kind: "unexpected"; frame: Frame };

export type SendResult = { ok: true } | { ok: false; reason: string };

/** The server's default --max-string-bytes, and the most a STRING can hold. */
export const MAX_STRING_BYTES = 32767;

const utf8 = new TextEncoder();

/** A map key for one handshake (the client keeps its own: it imports nothing of the server's). */
function randomPassword(): number {
  return crypto.getRandomValues(new Int16Array(1))[0];
}

export class Requests {
  #client: ChatClient;
  #me: string;
  #expect: Request[] = [];
  #outgoing = new Map<string, OutgoingAsk>();
  #incoming: TCPAsk[] = [];
  #drainWaiters: Array<() => void> = [];
  #maxBytes: number;
  #largestAccepted = 0;

  /**
   * `maxBytes`: the longest STRING the server takes. A longer message is
   * refused here, with the reason, instead of getting the connection closed.
   */
  constructor(client: ChatClient, me: string, maxBytes = MAX_STRING_BYTES) {
    this.#client = client;
    this.#me = me;
    this.#maxBytes = maxBytes;
  }

  /** Asks of others waiting for our answer, oldest first. */
  get incomingCount(): number {
    return this.#incoming.length;
  }

  /** The longest message the server answered so far, in bytes. */
  get largestAccepted(): number {
    return this.#largestAccepted;
  }

  /** The longest message sent and not answered yet, in bytes (0: none). */
  largestUnanswered(): number {
    let n = 0;
    for (const r of this.#expect) {
      if (r.kind === "sma" || r.kind === "spm") n = Math.max(n, r.bytes);
    }
    return n;
  }

  sendAll(message: string): SendResult {
    const tooLong = this.#tooLong(message);
    if (tooLong) return tooLong;
    return this.#send({ op: Op.SMA, sender: this.#me, message }, {
      kind: "sma",
      bytes: utf8.encode(message).length,
    });
  }

  sendPrivate(to: string, message: string): SendResult {
    const tooLong = this.#tooLong(message) ?? this.#tooLong(to, "the name");
    if (tooLong) return tooLong;
    return this.#send(
      { op: Op.SPM, sender: this.#me, recipient: to, message },
      { kind: "spm", to, bytes: utf8.encode(message).length },
    );
  }

  /** Asks `to` for a private connection, to fetch `file` over it once accepted. */
  ask(to: string, file: string): SendResult {
    const tooLong = this.#tooLong(to, "the name");
    if (tooLong) return tooLong;
    let password = randomPassword();
    while (this.#outgoing.has(this.#id(this.#me, to, password))) password = randomPassword();
    const sent = this.#send(
      { op: Op.TCPAsk, sender: this.#me, recipient: to, password },
      { kind: "ask", to, password, file, aborted: false },
    );
    if (sent.ok) {
      this.#outgoing.set(this.#id(this.#me, to, password), {
        to,
        password,
        file,
        accepted: false,
        askedAt: Date.now(),
      });
    }
    return sent;
  }

  decline(ask: TCPAsk): SendResult {
    return this.#send({ ...ask, op: Op.TCPAbort }, { kind: "decline", ask });
  }

  /** Removes and returns the oldest ask waiting for our answer (from `from`, if given). */
  takeIncoming(from?: string): TCPAsk | undefined {
    const i = from === undefined ? 0 : this.#incoming.findIndex((a) => a.sender === from);
    if (i < 0 || i >= this.#incoming.length) return undefined;
    return this.#incoming.splice(i, 1)[0];
  }

  /** Forgets our ask once its link is done (fetched, failed or refused). */
  finished(ask: OutgoingAsk): void {
    this.#outgoing.delete(this.#id(this.#me, ask.to, ask.password));
  }

  /** Resolves once every request sent has its answer, the connection ends, or `ms` pass. */
  drained(ms: number): Promise<void> {
    if (this.#expect.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#drainWaiters.push(done);
      this.#client.closed.then(done);
    });
  }

  /** What `f` means; null for frames this user has nothing to see or do about. */
  handle(f: Frame): ChatEvent | null {
    switch (f.op) {
      case Op.SPM:
        return { kind: "private", from: f.sender, to: f.recipient, text: f.message };
      case Op.SMA:
        return { kind: "public", from: f.sender, text: f.message };
      case Op.TCPAsk:
        if (f.recipient !== this.#me) return null;
        this.#incoming.push(f);
        return { kind: "asked", ask: f, pending: this.#incoming.length };
      case Op.TCPAccept: {
        if (f.sender !== this.#me) return null;
        const ask = this.#outgoing.get(this.#keyOf(f));
        if (!ask || ask.accepted) return null;
        ask.accepted = true;
        return { kind: "accepted", ask };
      }
      case Op.TCPAbort:
        return this.#onAbort(f);
      case Op.ERROR:
        return this.#onError(f.code);
      default:
        return { kind: "unexpected", frame: f };
    }
  }

  #tooLong(text: string, what = "the message"): SendResult | null {
    const n = utf8.encode(text).length;
    if (n <= this.#maxBytes) return null;
    return {
      ok: false,
      reason: `${what} is ${n} bytes; the server takes at most ${this.#maxBytes}`,
    };
  }

  #send(frame: Frame, request: Request): SendResult {
    try {
      this.#client.send(frame);
    } catch (e) {
      if (e instanceof EncodeError) return { ok: false, reason: `too long (${e.message})` };
      throw e;
    }
    this.#expect.push(request);
    return { ok: true };
  }

  #id(a: string, b: string, password: number): string {
    return handshakeId({ a, b, password });
  }

  #keyOf(f: AnyTcpFrame): string {
    return handshakeId(handshakeKeyOf(f));
  }

  #onAbort(f: AnyTcpFrame): ChatEvent | null {
    const key = this.#keyOf(f);
    if (f.sender === this.#me) {
      // Our ask. If its ERROR is still to come, that ERROR says why.
      const pending = this.#expect.find((e) =>
        e.kind === "ask" && e.to === f.recipient && e.password === f.password
      );
      if (pending && pending.kind === "ask") {
        pending.aborted = true;
        return null;
      }
      const ask = this.#outgoing.get(key);
      if (!ask) return null; // already reported
      this.#outgoing.delete(key);
      return {
        kind: "ask-ended",
        to: f.recipient,
        accepted: ask.accepted,
        afterMs: Date.now() - ask.askedAt,
      };
    }
    if (f.recipient !== this.#me) return null;
    const i = this.#expect.findIndex((e) =>
      e.kind === "decline" && handshakeId(handshakeKeyOf(e.ask)) === key
    );
    if (i >= 0) {
      this.#expect.splice(i, 1);
      this.#notifyDrained();
      return { kind: "declined", from: f.sender };
    }
    const j = this.#incoming.findIndex((a) => this.#keyOf(a) === key);
    if (j < 0) return null;
    this.#incoming.splice(j, 1);
    return { kind: "withdrawn", from: f.sender };
  }

  #onError(code: number): ChatEvent {
    const request = this.#expect.shift();
    this.#notifyDrained();
    if (!request) return { kind: "stray-error", code };
    if (request.kind === "sma" || request.kind === "spm") {
      this.#largestAccepted = Math.max(this.#largestAccepted, request.bytes);
    }
    if (request.kind === "ask" && (code !== 1 || request.aborted)) {
      this.#outgoing.delete(this.#id(this.#me, request.to, request.password));
    }
    return { kind: "reply", request, code };
  }

  #notifyDrained(): void {
    if (this.#expect.length > 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}
