/**
 * spm mode: sender/recipient pairs, each sender keeping `window` SPMs
 * un-acked, optionally paced to a total rate; recipients may stay silent
 * (log in, never read) to play slow readers, or all senders may send to one
 * user logged in elsewhere (`to`).
 */
import { writeAll } from "../../src/lib/async.ts";
import { errorMessage } from "../../src/lib/errors.ts";
import {
  frame,
  FrameScanner,
  type FrameSink,
  nowUs,
  OK,
  OP_ERROR,
  OP_SMA,
  OP_SPM,
  timedText,
} from "../wire.ts";
import type { GenConfig } from "./config.ts";
import { dial, login, preamble, readLoop } from "./net.ts";
import { Sender } from "./sender.ts";
import type { GenState } from "./state.ts";

export async function setupSpm(cfg: GenConfig, st: GenState): Promise<() => void> {
  const pairs = cfg.pairs ?? 50;
  const window = cfg.window ?? 32;
  const sizes = cfg.msgSizes ?? [cfg.msgSize ?? 32];
  const k = cfg.ports.length;
  const shift = k > 1 ? 1 : 0;
  const rPorts = cfg.recipientPorts;
  const echo = cfg.target === "forwarder";
  const senders: Sender[] = [];
  const unlimited = () => Infinity;

  const setups = [];
  for (let i = 0; i < pairs; i++) {
    setups.push((async () => {
      const s = `g${cfg.gen}s${i}`;
      const r = cfg.to ?? `g${cfg.gen}r${i}`;
      const sc = await dial(cfg.ports[i % k]);
      const rc = cfg.to === undefined
        ? await dial(rPorts ? rPorts[i % rPorts.length] : cfg.ports[(i + shift) % k])
        : null;
      if (echo) {
        const key = cfg.gen * 100_000 + i;
        await preamble(sc, key);
        if (rc) await preamble(rc, key);
      } else {
        await login(sc, s);
        if (rc) await login(rc, r);
      }
      const text = timedText(sizes[i % sizes.length]);
      const sender = new Sender(st, sc, frame(OP_SPM, [s, r, text]), window, unlimited);
      // A dropped slow reader's sender stops: refused SPMs are another load (flood control's).
      sender.stopOnRefusal = cfg.silentRecipients === true;
      senders[i] = sender;
      const sScan = new FrameScanner();
      readLoop(sc, 16 * 1024, (buf, n) => {
        sScan.feed(buf, n, sender);
        sender.pump();
      }, st.onEnd);
      if (rc && !cfg.silentRecipients) readRecipient(st, rc, echo);
    })());
    // Connect in small waves: a burst of thousands of SYNs would overflow the backlog.
    if (setups.length % 64 === 0) await Promise.all(setups.splice(0));
  }
  await Promise.all(setups);

  return () => {
    const rate = cfg.rate ?? 0;
    if (rate <= 0) {
      for (const s of senders) s.pump();
      return;
    }
    // Paced: every millisecond each sender may send what its share of the rate allows.
    const perSender = rate / senders.length;
    const t0 = performance.now();
    for (const s of senders) s.allowance = 0;
    const tick = setInterval(() => {
      if (st.stopping) return clearInterval(tick);
      const due = Math.floor(((performance.now() - t0) / 1000) * perSender);
      for (const s of senders) {
        s.allowance = due - s.totalSent;
        s.pump();
      }
    }, 1);
  };
}

/**
 * Counts and times what a recipient reads. With the forwarder, the recipient
 * acks each SPM back to the sender itself (the forwarder cannot): one write
 * per read, like the server.
 */
function readRecipient(st: GenState, rc: Deno.Conn, echo: boolean): void {
  const rScan = new FrameScanner();
  const acks = new Uint8Array(2 * 4096);
  for (let j = 0; j < 4096; j++) acks.set(OK, 2 * j);
  let owed = 0;
  let acking = false;
  const flushAcks = () => {
    if (acking || owed === 0) return;
    const m = Math.min(owed, 4096);
    owed -= m;
    acking = true;
    writeAll(rc, acks.subarray(0, 2 * m)).then(() => {
      acking = false;
      flushAcks();
    }, (e) => {
      if (!st.stopping) st.noteError(`ack write: ${errorMessage(e)}`);
    });
  };
  let now = 0;
  const sink: FrameSink = {
    onFrame(op, buf, off) {
      if (op === OP_SPM) {
        st.delivered++;
        st.recordTimed(buf, off, now);
        owed++;
      } else if (op !== OP_ERROR && op !== OP_SMA) {
        // SMAs reach every user: a pair beside an SMA flood gets them too.
        st.noteError(`unexpected opcode ${op} at a recipient`);
      }
    },
  };
  readLoop(rc, 64 * 1024, (buf, n) => {
    now = nowUs();
    rScan.feed(buf, n, sink);
    if (echo) flushAcks();
    else owed = 0;
  }, st.onEnd);
}
