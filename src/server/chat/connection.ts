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
import { clearTimer, unrefTimeout } from "../../lib/timers.ts";
import type { Metrics } from "../metrics.ts";
import { OutboundQueue } from "./outbound.ts";
import type { ChatSession } from "./session.ts";
import type { Identified } from "../net/client_address.ts";
import { LogBudget } from "../../lib/log_budget.ts";

/** Where a connection whose first frame opens a private end goes (the link broker). */
export interface LinkOpener {
  openAccept(
    conn: Deno.Conn,
    frame: TCPAccept,
    raw: Uint8Array,
    rest: Uint8Array,
    address: string,
  ): Promise<void>;
  openConnect(conn: Deno.Conn, frame: TCPConnect, rest: Uint8Array, address: string): Promise<void>;
}

/** What serving one connection uses of its node. */
export interface ConnectionDeps {
  limits: { loginTimeoutMs: number; maxQueuedBytes: number; maxStringBytes: number };
  log: Logger;
  metrics: Metrics;
  links: LinkOpener;
  /** Makes the chat session of a connection whose first frame is not a link's. */
  newSession(out: OutboundQueue, address: string, close: (reason: string) => void): ChatSession;
  /** Every chat connection's outbound queue, while it lives (a drain waits on them). */
  outbound: Set<OutboundQueue>;
  /** The connection's real address (PROXY protocol applied) and bytes read past its header. */
  identify(conn: Deno.Conn): Promise<Identified>;
}

/** Refused PROXY headers and malformed frames are logged at most this often: a flood must not flood the log. */
const headerRefusals = new LogBudget(10, 1000);
const malformedLines = new LogBudget(10, 1000);

/** Small while idle (RSS per idle session); grown once for a client that fills it. */
const SMALL_READ = 1024;
const LARGE_READ = 32 * 1024;

export async function serveConnection(
  conn: Deno.TcpConn,
  deps: ConnectionDeps,
  onClose: () => void,
): Promise<void> {
  const { log, metrics, limits } = deps;
  const who = await deps.identify(conn);
  if (!who.ok) {
    metrics.proxyHeaderRefused++;
    const say = headerRefusals.take();
    if (say) log.warn("connection refused", { peer: who.address, reason: who.reason, ...say });
    closeQuietly(conn);
    onClose();
    return;
  }
  const address = who.address;
  log.debug("connection opened", { address });
  let closeReason = "client closed";
  let closed = false;
  const close = (reason: string) => {
    if (closed) return;
    closed = true;
    closeReason = reason;
    closeQuietly(conn);
  };
  const out = new OutboundQueue(conn, limits.maxQueuedBytes, () => {
    metrics.slowConsumerDrops++;
    log.warn("slow reader dropped", { address, pseudo: session?.pseudo, queued: out.pending });
    close("slow reader: outbound queue over limit");
  }, (e) => close(`write failed: ${errorMessage(e)}`));
  deps.outbound.add(out);
  let session: ChatSession | null = null;
  let handedOver = false;

  const loginTimer = unrefTimeout(() => {
    if (session?.pseudo == null && !handedOver) {
      metrics.loginTimeouts++;
      log.info("login timeout", { address });
      close("no login before the timeout");
    }
  }, limits.loginTimeoutMs);

  // The server relays messages without reading them: skip building their strings.
  const decoder = new FrameDecoder(limits.maxStringBytes, { lazyMessage: true });
  let buf = new Uint8Array(SMALL_READ);
  // Bytes that came with the PROXY header are the client's first frames.
  let initial: Uint8Array | null = who.initial.length > 0 ? who.initial : null;
  try {
    reading: while (true) {
      let n: number | null;
      if (initial) {
        decoder.push(initial);
        initial = null;
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
          const say = malformedLines.take();
          if (say) {
            log.warn("malformed frame, closing", {
              address,
              pseudo: session?.pseudo,
              reason,
              ...say,
            });
          }
          close(`malformed frame: ${reason}`);
          break reading;
        }
        const { frame, raw } = step;
        if (session === null) {
          if (frame.op === Op.TCPAccept || frame.op === Op.TCPConnect) {
            metrics.framesIn[frame.op]++;
            handedOver = true;
            clearTimer(loginTimer);
            const rest = decoder.takeRemainder();
            if (frame.op === Op.TCPAccept) {
              await deps.links.openAccept(conn, frame, raw, rest, address);
            } else {
              await deps.links.openConnect(conn, frame, rest, address);
            }
            return; // the link broker owns the socket now
          }
          session = deps.newSession(out, address, close);
        }
        session.post({ kind: "frame", frame, raw });
      }
      // The frames just posted may still refer to `buf`: wait for the actor
      // before reading over it. This is also the session's backpressure.
      if (session?.mailbox.busy) await session.mailbox.idle();
      if (n === buf.length && buf.length < LARGE_READ) buf = new Uint8Array(LARGE_READ);
    }
  } catch (e) {
    log.error("connection handler failed", { address, error: errorMessage(e) });
    closeReason = "internal error";
  } finally {
    clearTimer(loginTimer);
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
    }
    onClose();
  }
}
