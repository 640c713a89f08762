/**
 * sma mode: receivers that read, and senders each keeping `window` SMAs
 * un-acked; at most `inflight` SMAs (all senders together) not yet delivered
 * everywhere, so no receiver's queue on the server grows while the generator
 * falls behind. A huge `inflight` turns that off: a flood.
 */
import { frame, FrameScanner, type FrameSink, nowUs, OP_SMA, timedText } from "../wire.ts";
import type { GenConfig } from "./config.ts";
import { dial, login, readLoop } from "./net.ts";
import { Sender } from "./sender.ts";
import type { GenState } from "./state.ts";

export async function setupSma(cfg: GenConfig, st: GenState): Promise<() => void> {
  const nRecv = cfg.receivers ?? 1000;
  const nSend = cfg.senders ?? 4;
  const window = cfg.window ?? 16;
  const inflight = cfg.inflight ?? nSend * window;
  const text = timedText(cfg.msgSize ?? 32);
  const k = cfg.ports.length;
  const fan = nRecv + nSend - 1;
  let sentTotal = 0;
  let deliveredTotal = 0;
  let gated = false;
  const senders: Sender[] = [];

  const gate = () => {
    const room = inflight - (sentTotal - deliveredTotal / fan);
    if (room < 1) {
      gated = true;
      return 0;
    }
    return Math.floor(room);
  };
  let now = 0;
  const onSma = (buf: Uint8Array, off: number) => {
    st.delivered++;
    deliveredTotal++;
    st.recordTimed(buf, off, now);
  };
  const ungate = () => {
    if (gated && sentTotal - deliveredTotal / fan <= inflight / 2) {
      gated = false;
      for (const s of senders) s.pump();
    }
  };

  const recvSink: FrameSink = {
    onFrame(op, buf, off) {
      if (op === OP_SMA) onSma(buf, off);
      else st.noteError(`unexpected opcode ${op} at a receiver`);
    },
  };
  const jobs = [];
  for (let i = 0; i < nRecv; i++) {
    jobs.push((async () => {
      const c = await dial(cfg.ports[i % k]);
      await login(c, `g${cfg.gen}v${i}`);
      const scan = new FrameScanner();
      readLoop(c, 16 * 1024, (buf, n) => {
        now = nowUs();
        scan.feed(buf, n, recvSink);
        ungate();
      }, st.onEnd);
    })());
    if (jobs.length % 64 === 0) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
  for (let j = 0; j < nSend; j++) {
    const name = `g${cfg.gen}t${j}`;
    const c = await dial(cfg.ports[j % k]);
    await login(c, name);
    const s = new Sender(st, c, frame(OP_SMA, [name, text]), window, gate);
    s.onSent = (n) => (sentTotal += n);
    s.onSma = onSma;
    senders.push(s);
    const scan = new FrameScanner();
    readLoop(c, 16 * 1024, (buf, n) => {
      now = nowUs();
      scan.feed(buf, n, s);
      s.pump();
      ungate();
    }, (why) => st.stopping || st.noteError(`sender's connection ended: ${why}`));
  }
  return () => {
    for (const s of senders) s.pump();
  };
}
