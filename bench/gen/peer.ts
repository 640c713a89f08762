/**
 * The peer modes (bench/scenarios/peers.ts): one load over ChatOS, or over IRC
 * for target "ircd", so that ours and the IRC daemons are driven alike.
 *
 *   peer-pm    `pairs` senders, each sending private messages to its own recipient
 *   peer-room  `receivers` + `senders` users in one room (ChatOS: everyone logged in,
 *              the senders send SMAs; IRC: one channel, PRIVMSGs to it)
 *
 * Windows are end to end: a sender has at most `window` messages that its
 * recipients have not all received. IRC has no acknowledgement to count on;
 * ChatOS's acks (ERROR 1) are read and counted but do not open the window, so
 * both protocols keep as many messages in flight. `oper`: every IRC session
 * becomes an operator ("bench") and sets user mode +F (ngIRCd's relaxed flood
 * protection), and the setup fails if the server does not confirm +F.
 */
import { writeAll } from "../../src/lib/async.ts";
import {
  frame,
  FrameScanner,
  type FrameSink,
  lastStringOffset,
  nowUs,
  OP_ERROR,
  OP_SMA,
  OP_SPM,
  readTs,
  timedText,
  TS_DIGITS,
} from "../wire.ts";
import type { GenConfig } from "./config.ts";
import {
  IrcScanner,
  type IrcSink,
  line,
  pong,
  privmsg,
  privmsgTextOffset,
  REGISTERED,
  registration,
} from "./irc.ts";
import { dial, login, readLoop } from "./net.ts";
import { Sender } from "./sender.ts";
import type { GenState } from "./state.ts";

/** One message arrived: its text (timestamp first) is at buf[textOff]. */
type OnMsg = (buf: Uint8Array, textOff: number) => void;

interface Session {
  nick: string;
  port: number;
  /** IRC: the channel to join. */
  room?: string;
  onMsg: OnMsg;
  /** After each read, once its messages were counted. */
  afterRead: () => void;
}

/** Called before each read's messages are counted (the clock for their latency). */
type BeforeRead = () => void;

/** The text of every message: the timestamp, the sender's index as a letter, filler. */
function peerText(size: number, sender: number): string {
  const t = timedText(size);
  // A space keeps an IRC server from sending the text as a middle parameter (no colon).
  return `${t.slice(0, TS_DIGITS + 1)}${String.fromCharCode(97 + sender)} ${
    t.slice(TS_DIGITS + 3)
  }`;
}

const senderOf = (buf: Uint8Array, textOff: number) => buf[textOff + TS_DIGITS + 1] - 97;

/** Logs a ChatOS session in; SPMs and SMAs go to onMsg, acks are counted. */
async function openChatos(st: GenState, s: Session, before: BeforeRead): Promise<Deno.Conn> {
  const conn = await dial(s.port);
  await login(conn, s.nick);
  const scan = new FrameScanner();
  const sink: FrameSink = {
    onFrame(op, buf, off) {
      if (op === OP_SPM || op === OP_SMA) s.onMsg(buf, lastStringOffset(buf, off));
      else if (op !== OP_ERROR) st.noteError(`unexpected opcode ${op}`);
      else if (buf[off + 1] === 1) st.acked++;
      else {
        st.refused++;
        st.noteError(`ERROR ${buf[off + 1]} at ${s.nick}`);
      }
    },
  };
  readLoop(conn, 16 * 1024, (buf, n) => {
    before();
    scan.feed(buf, n, sink);
    s.afterRead();
  }, st.onEnd);
  return conn;
}

/**
 * Registers an IRC session (then OPER and +F, then JOIN, as asked), each step
 * waiting for the server's answer; PRIVMSGs go to onMsg, PINGs are answered,
 * and an ERROR or an error numeric fails the step (or, later, counts as an error).
 */
async function openIrc(
  st: GenState,
  s: Session,
  before: BeforeRead,
  oper: boolean,
): Promise<Deno.Conn> {
  const conn = await dial(s.port);
  let waiting: { until: Set<string>; done: () => void; fail: (e: Error) => void } | null = null;
  let plusF = false;
  const sink: IrcSink = {
    onPrivmsg: s.onMsg,
    onLine(cmd, text) {
      if (cmd === "PING") void conn.write(pong(text()));
      else if (cmd === "MODE" && / :?\+\w*F/.test(text())) plusF = true;
      if (waiting?.until.has(cmd)) {
        waiting.done();
        waiting = null;
      } else if (cmd === "ERROR" || (/^[45]\d\d$/.test(cmd) && !REGISTERED.has(cmd))) {
        const e = new Error(`${s.nick}: ${text()}`);
        if (waiting) waiting.fail(e);
        else st.noteError(e.message);
      }
    },
  };
  const step = (bytes: Uint8Array, until: string[]) =>
    new Promise<void>((done, fail) => {
      waiting = { until: new Set(until), done, fail };
      writeAll(conn, bytes).catch(fail);
    });
  const scan = new IrcScanner();
  readLoop(conn, 16 * 1024, (buf, n) => {
    before();
    scan.feed(buf, n, sink);
    s.afterRead();
  }, (why) => {
    waiting?.fail(new Error(`${s.nick}: connection ended (${why})`));
    st.onEnd(why);
  });
  await step(registration(s.nick), [...REGISTERED]);
  if (oper) {
    await step(line(`OPER bench bench\r\nMODE ${s.nick} +F\r\nPING :plusF`), ["PONG"]);
    if (!plusF) throw new Error(`${s.nick}: the server did not confirm user mode +F`);
  }
  if (s.room) await step(line(`JOIN ${s.room}`), ["366"]);
  return conn;
}

export async function setupPeer(cfg: GenConfig, st: GenState): Promise<() => void> {
  const irc = cfg.target === "ircd";
  const size = cfg.msgSize ?? 64;
  const window = cfg.window ?? 16;
  const port = cfg.ports[0];
  let now = 0;
  const tick = () => (now = nowUs());
  const open = (s: Session) =>
    irc ? openIrc(st, s, tick, cfg.oper === true) : openChatos(st, s, tick);
  const senders: Sender[] = [];
  const newSender = (conn: Deno.Conn, msg: Uint8Array, gate: () => number) => {
    const s = new Sender(st, conn, msg, window, gate, irc ? privmsgTextOffset(msg) : undefined);
    s.credits = Infinity; // the window is the gate's, end to end
    senders.push(s);
    return s;
  };
  const counted = (then: (buf: Uint8Array, off: number) => void): OnMsg => (buf, off) => {
    st.delivered++;
    st.hist.record(now - readTs(buf, off));
    then(buf, off);
  };

  if (cfg.mode === "peer-pm") {
    const pairs = cfg.pairs ?? 50;
    const unexpected: OnMsg = () => st.noteError("a message at a sender");
    const jobs = [];
    for (let i = 0; i < pairs; i++) {
      jobs.push((async () => {
        const from = `g${cfg.gen}s${i}`;
        const to = `g${cfg.gen}r${i}`;
        const text = peerText(size, 0);
        const conn = await open({ nick: from, port, onMsg: unexpected, afterRead: () => {} });
        const msg = irc ? privmsg(to, text) : frame(OP_SPM, [from, to, text]);
        let got = 0;
        const s = newSender(conn, msg, () => window - (s.totalSent - got));
        await open({ nick: to, port, onMsg: counted(() => got++), afterRead: () => s.pump() });
      })());
      // Connect in small waves: a burst of thousands of SYNs would overflow the backlog.
      if (jobs.length % 64 === 0) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
  } else if (cfg.mode === "peer-room") {
    const nSend = cfg.senders ?? 1;
    const nRecv = cfg.receivers ?? 199;
    const fan = nRecv + nSend - 1;
    const room = `#r${cfg.gen}`;
    const got = new Float64Array(nSend);
    const onMsg = counted((buf, off) => got[senderOf(buf, off)]++);
    const afterRead = () => {
      for (const s of senders) s.pump();
    };
    const jobs = [];
    for (let i = 0; i < nRecv; i++) {
      jobs.push(open({ nick: `g${cfg.gen}v${i}`, port, room, onMsg, afterRead }));
      if (jobs.length % 64 === 0) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
    for (let j = 0; j < nSend; j++) {
      const nick = `g${cfg.gen}t${j}`;
      const conn = await open({ nick, port, room, onMsg, afterRead });
      const text = peerText(size, j);
      const msg = irc ? privmsg(room, text) : frame(OP_SMA, [nick, text]);
      const s = newSender(conn, msg, () => Math.floor(window - (s.totalSent - got[j] / fan)));
    }
  } else throw new Error(`unknown peer mode ${cfg.mode}`);

  return () => {
    for (const s of senders) s.pump();
  };
}
