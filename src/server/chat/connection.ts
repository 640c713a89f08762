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
  fanOut(): number;
}

/** Small while idle (RSS per idle session); grown once for a client that fills it. */
const SMALL_READ = 1024;
const LARGE_READ = 32 * 1024;

/**
 * Serves one admitted connection. `initial`: bytes already read from it (what
 * followed a PROXY header), the client's first frames.
 */
export async function serveConnection(
  conn: Deno.TcpConn,
  deps: ConnectionDeps,
  ticket: Ticket,
  initial: Uint8Array,
  onClose: () => void,
): Promise<void> {
  const address = ticket.address;
  const { log, metrics, limits } = deps;
  log.debug("connection opened", { address });
  let closeReason = "client closed";
  let closed = false;
  let pauseTimer: TimerId | undefined;
  let resumeReading: (() => void) | null = null;
  const close = (reason: string) => {
    if (closed) return;
    closed = true;
    closeReason = reason;
    closeQuietly(conn);
    clearTimer(pauseTimer);
    resumeReading?.();
  };
  ticket.onEvict(close); // its reason says so in the "connection closed" line
  const out = new OutboundQueue(
    conn,
    limits.maxQueuedBytes,
    (discarded) => {
      metrics.slowConsumerDrops++;
      metrics.slowReaderDiscardedBytes += discarded;
      deps.warn.warn("slow reader dropped", { address, pseudo: session?.pseudo, discarded });
      close("slow reader: outbound queue over limit");
    },
    (e) => close(`write failed: ${errorMessage(e)}`),
    deps.queueBudget,
  );
  deps.outbound.add(out);
  let flood: FloodControl | null = null;
  let session: ChatSession | null = null;
  let handedOver = false;

  const loginTimer = unrefTimeout(() => {
    if (session?.pseudo == null && !handedOver) {
      metrics.loginTimeouts++;
      // Any client can cause this at will: counted on /metrics, logged at debug only.
      log.debug("login timeout", { address });
      close("no login before the timeout");
    }
  }, limits.loginTimeoutMs);

  // The server relays messages without reading them: skip building their strings.
  const decoder = new FrameDecoder(limits.maxStringBytes, { lazyMessage: true });
  let buf = new Uint8Array(SMALL_READ);
  let pending: Uint8Array | null = initial.length > 0 ? initial : null;
  try {
    reading: while (true) {
      let n: number | null;
      if (pending) {
        decoder.push(pending);
        pending = null;
        n = 0;
      } else {
        try {
          n = await conn.read(buf);
        } catch (e) {
          if (!closed) closeReason = `read failed: ${(e as Error).name}`;
          break;
        }
        if (n === null) break;
        decoder.push(buf.subarray(0, n));
      }
      for (let step = decoder.next(); step !== null; step = decoder.next()) {
        if (!step.ok) {
          metrics.malformedFrames++;
          const reason = describeProtocolError(step.error);
          deps.warn.warn("malformed frame, closing", { address, pseudo: session?.pseudo, reason });
          close(`malformed frame: ${reason}`);
          break reading;
        }
        const { frame, raw } = step;
        if (session === null) {
          if (frame.op === Op.TCPAccept || frame.op === Op.TCPConnect) {
            metrics.framesIn[frame.op]++;
            handedOver = true;
            clearTimer(loginTimer);
            ticket.handedOver();
            const rest = decoder.takeRemainder();
            if (frame.op === Op.TCPAccept) {
              await deps.links.openAccept(conn, frame, raw, rest, address, ticket);
            } else {
              await deps.links.openConnect(conn, frame, rest, address, ticket);
            }
            return; // the link broker owns the socket (and its ticket) now
          }
          session = deps.newSession(out, address, close, ticket);
          flood = new FloodControl(limits, deps.fanOut);
        }
        flood?.count(frame.op, raw.length);
        session.post({ kind: "frame", frame, raw });
      }
      // The frames just posted may still refer to `buf`: wait for the actor
      // before reading over it. This is also the session's backpressure.
      if (session?.mailbox.busy) await session.mailbox.idle();
      if (n === buf.length && buf.length < LARGE_READ) buf = new Uint8Array(LARGE_READ);
      const debt = flood?.charge() ?? 0;
      if (debt > 0 && !closed) {
        metrics.throttled++;
        // Stop reading for the debt (or until closed): the flooder waits, nobody else does.
        await new Promise<void>((resolve) => {
          resumeReading = resolve;
          pauseTimer = setTimeout(resolve, debt);
        });
      }
    }
  } catch (e) {
    log.error("connection handler failed", { address, error: errorMessage(e) });
    closeReason = "internal error";
    if (handedOver) {
      // the broker failed before owning the socket: close it and give its place back
      closeQuietly(conn);
      ticket.release();
    }
  } finally {
    clearTimer(loginTimer);
    clearTimer(pauseTimer);
    deps.outbound.delete(out);
    if (!handedOver) {
      session?.post({ kind: "closed" });
      if (session) {
        await session.mailbox.idle();
        await session.settled();
      }
      // Let what was queued (e.g. the last ERROR) reach a client that closed only its sending side.
      if (!closed) await out.drained();
      out.close();
      close(closeReason);
      log.debug("connection closed", { address, pseudo: session?.pseudo, reason: closeReason });
      ticket.release();
    }
    onClose();
  }
}
