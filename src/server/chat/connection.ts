/**
 * One client connection from accept to close. The first frame decides the
 * role: TCPAccept or TCPConnect make it a private-link end (handed to the
 * link broker with whatever bytes followed); anything else makes it a chat
 * session. Frames are decoded in place from one reusable read buffer.
 */
import {
  describeProtocolError,
  FrameDecoder,
  Op,
  type ProtocolError,
  type TCPAccept,
  type TCPConnect,
} from "../../protocol/mod.ts";
import type { Logger } from "../../lib/log.ts";
import { closeQuietly, errorMessage } from "../../lib/errors.ts";
import { clearTimer, type TimerId, unrefTimeout } from "../../lib/timers.ts";
import type { WarnThrottle } from "../../lib/rate.ts";
import type { Metrics } from "../metrics.ts";
import type { Ticket } from "../limits/admission.ts";
import type { Slot } from "../limits/fd_budget.ts";
import { OutboundQueue, type QueueBudget } from "./outbound.ts";
import type { ChatSession } from "./session.ts";
import type { LoginTicket } from "../limits/admission.ts";
import { FloodControl, type FloodLimits } from "./flood_control.ts";

/** Where a connection whose first frame opens a private end goes (the link broker). */
export interface LinkOpener {
  openAccept(
    conn: Deno.Conn,
    frame: TCPAccept,
    raw: Uint8Array,
    rest: Uint8Array,
    address: string,
    slot: Slot,
  ): Promise<void>;
  openConnect(
    conn: Deno.Conn,
    frame: TCPConnect,
    rest: Uint8Array,
    address: string,
    slot: Slot,
  ): Promise<void>;
}

/** What serving one connection uses of its node. */
export interface ConnectionDeps {
  limits: FloodLimits & { loginTimeoutMs: number; maxQueuedBytes: number; maxStringBytes: number };
  log: Logger;
  /** Warnings a client can cause at will: rate limited. */
  warn: WarnThrottle;
  metrics: Metrics;
  links: LinkOpener;
  /** Makes the chat session of a connection whose first frame is not a link's. */
  newSession(
    out: OutboundQueue,
    address: string,
    close: (reason: string) => void,
    ticket: LoginTicket,
  ): ChatSession;
  /** Every chat connection's outbound queue, while it lives (a drain waits on them). */
  outbound: Set<OutboundQueue>;
  /** The node-wide bound on queued output. */
  queueBudget: QueueBudget;
  /** How many users an SMA reaches (what it costs its sender). */
  fanOut: () => number;
}

/** Small while idle (RSS per idle session); grown once for a client that fills it. */
const SMALL_READ = 1024;
const LARGE_READ = 32 * 1024;

/**
 * Serves one admitted connection. `initial`: bytes already read from it (what
 * followed a PROXY header), the client's first frames.
 */
export function serveConnection(
  conn: Deno.Conn,
  deps: ConnectionDeps,
  ticket: Ticket,
  initial: Uint8Array,
  onClose: () => void,
): Promise<void> {
  return new ClientConnection(conn, deps, ticket, onClose).serve(initial);
}

/** One connection's state; each of its jobs (reading, the login timer, teardown…) is one method. */
class ClientConnection {
  readonly #conn: Deno.Conn;
  readonly #d: ConnectionDeps;
  readonly #ticket: Ticket;
  readonly #onClose: () => void;
  readonly #out: OutboundQueue;
  #session: ChatSession | null = null;
  /** The first frame opened a private end: the link broker owns the socket and its ticket. */
  #handedOver = false;
  #closed = false;
  #closeReason = "client closed";
  #loginTimer: TimerId | undefined;
  #pauseTimer: TimerId | undefined;
  #resumeReading: (() => void) | null = null;

  /** Closes the socket, once; a paused read loop wakes up and ends. */
  readonly #close = (reason: string): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    closeQuietly(this.#conn);
    clearTimer(this.#pauseTimer);
    this.#resumeReading?.();
  };

  constructor(conn: Deno.Conn, deps: ConnectionDeps, ticket: Ticket, onClose: () => void) {
    this.#conn = conn;
    this.#d = deps;
    this.#ticket = ticket;
    this.#onClose = onClose;
    this.#out = new OutboundQueue(
      conn,
      deps.limits.maxQueuedBytes,
      (discarded) => this.#slowReader(discarded),
      (e) => this.#close(`write failed: ${errorMessage(e)}`),
      deps.queueBudget,
    );
  }

  /** Serves the connection until it closes or becomes a link end; `initial`: its first bytes. */
  async serve(initial: Uint8Array): Promise<void> {
    const { log, limits } = this.#d;
    log.debug("connection opened", { address: this.#ticket.address });
    this.#ticket.onEvict(this.#close); // its reason says so in the "connection closed" line
    this.#d.outbound.add(this.#out);
    this.#loginTimer = unrefTimeout(() => this.#loginTimeout(), limits.loginTimeoutMs);
    try {
      await this.#readLoop(initial);
    } catch (e) {
      this.#failed(e);
    } finally {
      await this.#teardown();
    }
  }

  /**
   * Reads and decodes until the client closes, a frame is malformed, or the
   * first frame hands the socket over to the link broker. Flood control is
   * charged once per read; nothing here allocates or awaits per frame.
   */
  async #readLoop(initial: Uint8Array): Promise<void> {
    // The server relays messages without reading them: skip building their strings.
    const decoder = new FrameDecoder(this.#d.limits.maxStringBytes, { lazyMessage: true });
    let buf = new Uint8Array(SMALL_READ);
    let pending: Uint8Array | null = initial.length > 0 ? initial : null;
    let session: ChatSession | null = null;
    let flood: FloodControl | null = null;
    while (true) {
      let n = 0;
      if (pending) {
        decoder.push(pending);
        pending = null;
      } else {
        let read: number | null;
        try {
          read = await this.#conn.read(buf);
        } catch (e) {
          if (!this.#closed) this.#closeReason = `read failed: ${(e as Error).name}`;
          return;
        }
        if (read === null) return;
        n = read;
        decoder.push(buf.subarray(0, n));
      }
      for (let step = decoder.next(); step !== null; step = decoder.next()) {
        if (!step.ok) return this.#malformed(step.error);
        const { frame, raw } = step;
        if (session === null || flood === null) {
          // The first frame decides: a private-link end, or a chat session.
          if (frame.op === Op.TCPAccept || frame.op === Op.TCPConnect) {
            return await this.#handOver(frame, raw, decoder.takeRemainder());
          }
          session = this.#startChat();
          flood = new FloodControl(this.#d.limits, this.#d.fanOut);
        }
        flood.count(frame.op, raw.length);
        session.post({ kind: "frame", frame, raw });
      }
      // The frames just posted may still refer to `buf`: wait for the actor
      // before reading over it. This is also the session's backpressure.
      if (session?.mailbox.busy) await session.mailbox.idle();
      if (n === buf.length && buf.length < LARGE_READ) buf = new Uint8Array(LARGE_READ);
      const debt = flood?.charge() ?? 0;
      if (debt > 0 && !this.#closed) await this.#pause(debt);
    }
  }

  /** The first frame is a chat one: this connection is a session from now on. */
  #startChat(): ChatSession {
    this.#session = this.#d.newSession(this.#out, this.#ticket.address, this.#close, this.#ticket);
    return this.#session;
  }

  /** The first frame opens a private end: the link broker takes the socket and its ticket. */
  async #handOver(
    frame: TCPAccept | TCPConnect,
    raw: Uint8Array,
    rest: Uint8Array,
  ): Promise<void> {
    const { metrics, links } = this.#d;
    const ticket = this.#ticket;
    metrics.framesIn[frame.op]++;
    this.#handedOver = true;
    clearTimer(this.#loginTimer);
    ticket.handedOver();
    if (frame.op === Op.TCPAccept) {
      await links.openAccept(this.#conn, frame, raw, rest, ticket.address, ticket);
    } else {
      await links.openConnect(this.#conn, frame, rest, ticket.address, ticket);
    }
  }

  #malformed(error: ProtocolError): void {
    this.#d.metrics.malformedFrames++;
    const reason = describeProtocolError(error);
    this.#d.warn.warn("malformed frame, closing", {
      address: this.#ticket.address,
      pseudo: this.#session?.pseudo,
      reason,
    });
    this.#close(`malformed frame: ${reason}`);
  }

  /** Flood control: stops reading for `ms` (or until closed); the flooder waits, nobody else does. */
  #pause(ms: number): Promise<void> {
    this.#d.metrics.throttled++;
    return new Promise<void>((resolve) => {
      this.#resumeReading = resolve;
      this.#pauseTimer = setTimeout(resolve, ms);
    });
  }

  /** The login timer: a connection still neither a session nor a link end is closed. */
  #loginTimeout(): void {
    if (this.#session?.pseudo == null && !this.#handedOver) {
      this.#d.metrics.loginTimeouts++;
      // Any client can cause this at will: counted on /metrics, logged at debug only.
      this.#d.log.debug("login timeout", { address: this.#ticket.address });
      this.#close("no login before the timeout");
    }
  }

  /** The outbound queue went over its bound: the client is not reading, it goes. */
  #slowReader(discarded: number): void {
    const { metrics, warn } = this.#d;
    metrics.slowConsumerDrops++;
    metrics.slowReaderDiscardedBytes += discarded;
    warn.warn("slow reader dropped", {
      address: this.#ticket.address,
      pseudo: this.#session?.pseudo,
      discarded,
    });
    this.#close("slow reader: outbound queue over limit");
  }

  /** A bug, or the broker failing before it owned the socket. */
  #failed(e: unknown): void {
    this.#d.log.error("connection handler failed", {
      address: this.#ticket.address,
      error: errorMessage(e),
    });
    this.#closeReason = "internal error";
    if (this.#handedOver) {
      // the broker failed before owning the socket: close it and give its place back
      closeQuietly(this.#conn);
      this.#ticket.release();
    }
  }

  /** Ends the session (if any), lets its last output out, closes and gives the place back. */
  async #teardown(): Promise<void> {
    const session = this.#session;
    clearTimer(this.#loginTimer);
    clearTimer(this.#pauseTimer);
    this.#d.outbound.delete(this.#out);
    if (!this.#handedOver) {
      session?.post({ kind: "closed" });
      if (session) {
        await session.mailbox.idle();
        await session.settled();
      }
      // Let what was queued (e.g. the last ERROR) reach a client that closed only its sending side.
      if (!this.#closed) await this.#out.drained();
      this.#out.close();
      this.#close(this.#closeReason);
      this.#d.log.debug("connection closed", {
        address: this.#ticket.address,
        pseudo: session?.pseudo,
        reason: this.#closeReason,
      });
      this.#ticket.release();
    }
    this.#onClose();
  }
}
