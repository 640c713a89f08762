/**
 * The load generator: one process, spawned by bench/run.ts, that opens raw
 * TCP connections to a ChatOS server (or to a ceiling: the forwarder or the
 * broadcaster) and drives one scenario.
 *
 * Usage: deno run -A bench/loadgen.ts '<GenConfig as JSON>'
 *
 * Control is line-based. The generator sets up its connections, prints
 * {"ev":"ready"} on stdout, then obeys JSON commands on stdin:
 *   go    start the load (connect: log everyone in, then print {"ev":"done",...})
 *   mark  reset the counters: the measured window starts
 *   stop  print {"ev":"result",...} for the window and stop sending
 *   quit  close everything and exit (so does end of stdin)
 * It also exits by itself after `lifetimeMs`, so it can never outlive a run.
 */

import net from "node:net";
import process from "node:process";
import { Hist } from "./hist.ts";
import {
  frame,
  FrameScanner,
  type FrameSink,
  lastStringOffset,
  nowUs,
  OK,
  OP_CR,
  OP_ERROR,
  OP_SMA,
  OP_SPM,
  OP_TCPACCEPT,
  OP_TCPASK,
  OP_TCPCONNECT,
  readTs,
  timedText,
  TS_DIGITS,
  writeAll,
  writeTs,
} from "./wire.ts";

export type Target = "chatos" | "forwarder" | "broadcaster";

export interface GenConfig {
  mode: "connect" | "spm" | "sma" | "link";
  target: Target;
  /** One port per server node; clients are spread over them. */
  ports: number[];
  /** Distinguishes this generator's pseudos and pairing keys from other generators'. */
  gen: number;
  lifetimeMs?: number;
  /** connect: sessions to open, and logins in flight at once. */
  count?: number;
  concurrency?: number;
  /** spm: sender/recipient pairs and un-acked messages per sender. */
  pairs?: number;
  window?: number;
  /** spm/sma: message text bytes (a timestamp plus filler). */
  msgSize?: number;
  /** spm: total msgs/s this generator paces to; 0 = as fast as the window allows. */
  rate?: number;
  /** sma: receivers, senders, and SMAs not yet delivered everywhere (all senders together). */
  receivers?: number;
  senders?: number;
  inflight?: number;
  /** link: bytes per write. */
  chunk?: number;
}

const cfg: GenConfig = JSON.parse(Deno.args[0] ?? "{}");
const enc = new TextEncoder();

function emit(obj: Record<string, unknown>): void {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(obj) + "\n"));
}

function fail(e: unknown): never {
  emit({ ev: "error", message: e instanceof Error ? e.message : String(e) });
  Deno.exit(1);
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function dial(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
  conn.setNoDelay(true);
  return conn;
}

/** Reads exactly `n` bytes (a login answer, a preamble), or throws on EOF. */
async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error("connection closed by the server");
    got += r;
  }
  return out;
}

/** CR then ERROR 1, the ChatOS login (the broadcaster speaks it too). */
async function login(conn: Deno.Conn, pseudo: string): Promise<void> {
  await writeAll(conn, frame(OP_CR, [pseudo]));
  const answer = await readExactly(conn, 2);
  if (answer[0] !== OP_ERROR || answer[1] !== 1) {
    throw new Error(`login ${pseudo}: got ${answer[0]}/${answer[1]}, not ERROR 1`);
  }
}

/** The forwarder pairs two sockets that send the same 4-byte key first. */
async function preamble(conn: Deno.Conn, key: number): Promise<void> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, key);
  await writeAll(conn, b);
}

/** Runs a read loop until EOF; `onRead(buf, n)` sees each read. */
function readLoop(
  conn: Deno.Conn,
  size: number,
  onRead: (buf: Uint8Array, n: number) => void,
  onEnd: (why: string) => void,
): void {
  const buf = new Uint8Array(size);
  (async () => {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return onEnd("eof");
      onRead(buf, n);
    }
  })().catch((e) => onEnd(String(e)));
}

// ---------------------------------------------------------------- counters

let stopping = false;
let windowStart = 0;
let cpuStart = 0;
let delivered = 0;
let sentInWindow = 0;
let bytesIn = 0;
let errors = 0;
let firstError = "";
const hist = new Hist();

function noteError(what: string): void {
  errors++;
  if (!firstError) firstError = what;
}

function mark(): void {
  windowStart = performance.now();
  cpuStart = cpuSeconds();
  delivered = 0;
  sentInWindow = 0;
  bytesIn = 0;
  hist.reset();
}

function result(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ev: "result",
    elapsed_s: (performance.now() - windowStart) / 1000,
    cpu_s: cpuSeconds() - cpuStart,
    delivered,
    sent: sentInWindow,
    bytes: bytesIn,
    errors,
    first_error: firstError || undefined,
    hist: hist.toJSON(),
    ...extra,
  };
}

const onEnd = (why: string) => {
  if (!stopping) noteError(`connection ended: ${why}`);
};

// ---------------------------------------------------------------- senders

/**
 * One sending connection with a window of un-acked frames. A pre-filled
 * buffer holds `window` copies of the frame; only timestamps are patched per
 * send, and everything allowed at once leaves in one write.
 */
class Sender implements FrameSink {
  conn: Deno.Conn;
  credits: number;
  /** Paced mode: frames the schedule allows but not yet sent. */
  allowance = Infinity;
  writing = false;
  batch: Uint8Array;
  frameLen: number;
  tsOff: number;
  totalSent = 0;
  gate: () => number;
  onSma: ((buf: Uint8Array, off: number) => void) | null = null;
  onSent: (n: number) => void = () => {};

  constructor(conn: Deno.Conn, template: Uint8Array, window: number, gate: () => number) {
    this.conn = conn;
    this.credits = window;
    this.frameLen = template.length;
    this.tsOff = lastStringOffset(template, 0);
    this.batch = new Uint8Array(template.length * window);
    for (let i = 0; i < window; i++) this.batch.set(template, i * template.length);
    this.gate = gate;
  }

  onFrame(op: number, buf: Uint8Array, off: number): void {
    if (op === OP_ERROR) {
      if (buf[off + 1] === 1) this.credits++;
      else noteError(`ERROR ${buf[off + 1]} on a sender`);
    } else if (op === OP_SMA && this.onSma) this.onSma(buf, off);
  }

  pump(): void {
    if (this.writing || stopping) return;
    const n = Math.min(this.credits, this.allowance, this.gate());
    if (n <= 0) return;
    this.writing = true;
    this.credits -= n;
    this.allowance -= n;
    this.totalSent += n;
    sentInWindow += n;
    this.onSent(n);
    const us = nowUs();
    for (let i = 0; i < n; i++) writeTs(this.batch, i * this.frameLen + this.tsOff, us);
    writeAll(this.conn, this.batch.subarray(0, n * this.frameLen)).then(
      () => {
        this.writing = false;
        this.pump();
      },
      (e) => {
        this.writing = false;
        if (!stopping) noteError(`write: ${e}`);
      },
    );
  }
}

/** Records the latency of a timed SPM/SMA frame at buf[off]. */
function recordTimed(buf: Uint8Array, off: number, now: number): void {
  const p = lastStringOffset(buf, off);
  hist.record(now - readTs(buf, p));
}

// ---------------------------------------------------------------- spm

async function setupSpm(): Promise<() => void> {
  const pairs = cfg.pairs ?? 50;
  const window = cfg.window ?? 32;
  const text = timedText(cfg.msgSize ?? 32);
  const k = cfg.ports.length;
  const shift = k > 1 ? 1 : 0;
  const echo = cfg.target === "forwarder";
  const senders: Sender[] = [];
  const unlimited = () => Infinity;

  const setups = [];
  for (let i = 0; i < pairs; i++) {
    setups.push((async () => {
      const s = `g${cfg.gen}s${i}`;
      const r = `g${cfg.gen}r${i}`;
      const sc = await dial(cfg.ports[i % k]);
      const rc = await dial(cfg.ports[(i + shift) % k]);
      if (echo) {
        const key = cfg.gen * 100_000 + i;
        await preamble(sc, key);
        await preamble(rc, key);
      } else {
        await login(sc, s);
        await login(rc, r);
      }
      const sender = new Sender(sc, frame(OP_SPM, [s, r, text]), window, unlimited);
      senders[i] = sender;
      const sScan = new FrameScanner();
      readLoop(sc, 16 * 1024, (buf, n) => {
        sScan.feed(buf, n, sender);
        sender.pump();
      }, onEnd);
      const rScan = new FrameScanner();
      const acks = new Uint8Array(2 * 4096);
      for (let j = 0; j < 4096; j++) acks.set(OK, 2 * j);
      let owed = 0;
      let acking = false;
      // With the forwarder, the recipient acks each SPM back to the sender
      // itself (the forwarder cannot): one write per read, like the server.
      const flushAcks = () => {
        if (acking || owed === 0) return;
        const m = Math.min(owed, 4096);
        owed -= m;
        acking = true;
        writeAll(rc, acks.subarray(0, 2 * m)).then(() => {
          acking = false;
          flushAcks();
        }, (e) => {
          if (!stopping) noteError(`ack write: ${e}`);
        });
      };
      let now = 0;
      const sink: FrameSink = {
        onFrame(op, buf, off) {
          if (op === OP_SPM) {
            delivered++;
            recordTimed(buf, off, now);
            owed++;
          } else if (op !== OP_ERROR) noteError(`unexpected opcode ${op} at a recipient`);
        },
      };
      readLoop(rc, 64 * 1024, (buf, n) => {
        now = nowUs();
        rScan.feed(buf, n, sink);
        if (echo) flushAcks();
        else owed = 0;
      }, onEnd);
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
      if (stopping) return clearInterval(tick);
      const due = Math.floor(((performance.now() - t0) / 1000) * perSender);
      for (const s of senders) {
        s.allowance = due - s.totalSent;
        s.pump();
      }
    }, 1);
  };
}

// ---------------------------------------------------------------- sma

async function setupSma(): Promise<() => void> {
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

  // How many more SMAs may go out: fewer than `inflight` not yet delivered everywhere,
  // so no receiver's queue on the server grows while the generator falls behind.
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
    delivered++;
    deliveredTotal++;
    recordTimed(buf, off, now);
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
      else noteError(`unexpected opcode ${op} at a receiver`);
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
      }, onEnd);
    })());
    if (jobs.length % 64 === 0) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
  for (let j = 0; j < nSend; j++) {
    const name = `g${cfg.gen}t${j}`;
    const c = await dial(cfg.ports[j % k]);
    await login(c, name);
    const s = new Sender(c, frame(OP_SMA, [name, text]), window, gate);
    s.onSent = (n) => (sentTotal += n);
    s.onSma = onSma;
    senders.push(s);
    const scan = new FrameScanner();
    readLoop(c, 16 * 1024, (buf, n) => {
      now = nowUs();
      scan.feed(buf, n, s);
      s.pump();
      ungate();
    }, onEnd);
  }
  return () => {
    for (const s of senders) s.pump();
  };
}

// ---------------------------------------------------------------- link

async function setupLink(): Promise<() => void> {
  const k = cfg.ports.length;
  const portA = cfg.ports[0];
  const portB = cfg.ports[(k > 1 ? 1 : 0) % k];
  let la: Deno.TcpConn;
  let lb: Deno.TcpConn;
  if (cfg.target === "forwarder") {
    la = await dial(portA);
    lb = await dial(portB);
    const key = cfg.gen * 100_000 + 99_999;
    await preamble(la, key);
    await preamble(lb, key);
  } else {
    const a = `g${cfg.gen}a`;
    const b = `g${cfg.gen}b`;
    const pw = 4242;
    const ca = await dial(portA);
    const cb = await dial(portB);
    await login(ca, a);
    await login(cb, b);
    await writeAll(ca, frame(OP_TCPASK, [a, b], pw));
    await expectFrame(ca, OP_ERROR, "TCPAsk answer");
    await expectFrame(cb, OP_TCPASK, "TCPAsk relayed to B");
    lb = await dial(portB);
    await writeAll(lb, frame(OP_TCPACCEPT, [a, b], pw));
    await expectFrame(ca, OP_TCPACCEPT, "TCPAccept relayed to A");
    la = await dial(portA);
    await writeAll(la, frame(OP_TCPCONNECT, [a, b], pw));
    await expectOk(la, "A's link end");
    await expectOk(lb, "B's link end");
    // The chat connections stay open (idle) for the life of the link.
  }
  readLoop(lb, 64 * 1024, (_buf, n) => {
    bytesIn += n;
    delivered += n;
  }, onEnd);
  const chunk = new Uint8Array(cfg.chunk ?? 64 * 1024).fill(0x61);
  return () => {
    (async () => {
      while (!stopping) {
        await writeAll(la, chunk);
        sentInWindow += chunk.length;
      }
    })().catch((e) => {
      if (!stopping) noteError(`link write: ${e}`);
    });
  };
}

/** Reads one whole frame and checks its opcode (link handshake steps; one frame per read). */
async function expectFrame(conn: Deno.Conn, op: number, what: string): Promise<void> {
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf);
  if (n === null) throw new Error(`${what}: connection closed`);
  if (buf[0] !== op) throw new Error(`${what}: opcode ${buf[0]}/${buf[1]}, expected ${op}`);
  if (op === OP_ERROR && buf[1] !== 1) throw new Error(`${what}: ERROR ${buf[1]}`);
}

async function expectOk(conn: Deno.Conn, what: string): Promise<void> {
  const b = await readExactly(conn, 2);
  if (b[0] !== OP_ERROR || b[1] !== 1) throw new Error(`${what}: ${b[0]}/${b[1]}, not ERROR 1`);
}

// ---------------------------------------------------------------- connect

const held: Array<{ destroy(): void }> = [];

/**
 * Thousands of connect() calls from 127.0.0.1 to one server port make the
 * kernel's ephemeral-port search the bottleneck (measured: 19k logins took
 * 3.4 s, 2.5 s of it the generator's system time). Spreading the source over
 * many loopback addresses (all of 127/8 is local) keeps that search short;
 * only node:net lets a client bind its local address, so logins use it.
 */
function loginFrom(port: number, local: string, pseudo: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: local });
    held.push(s);
    s.setNoDelay(true);
    let got = 0;
    const answer = new Uint8Array(2);
    s.on("connect", () => s.write(frame(OP_CR, [pseudo])));
    s.on("data", (d: Uint8Array) => {
      if (got >= 2) return;
      answer.set(d.subarray(0, 2 - got), got);
      got += Math.min(d.length, 2 - got);
      if (got < 2) return;
      s.pause(); // idle from here on, like a quiet user
      if (answer[0] === OP_ERROR && answer[1] === 1) resolve();
      else reject(new Error(`login ${pseudo}: got ${answer[0]}/${answer[1]}, not ERROR 1`));
    });
    s.on("error", reject);
    s.on("close", () => {
      if (got < 2) reject(new Error(`login ${pseudo}: connection closed`));
      else if (!stopping) noteError(`session ${pseudo} closed by the server`);
    });
  });
}

async function runConnect(): Promise<void> {
  const count = cfg.count ?? 1000;
  const conc = cfg.concurrency ?? 64;
  const k = cfg.ports.length;
  let next = 0;
  let logins = 0;
  let failures = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const local = `127.${100 + (cfg.gen % 100)}.${i & 63}.${1 + ((i >> 6) % 250)}`;
      try {
        await loginFrom(cfg.ports[i % k], local, `g${cfg.gen}c${i}`);
        logins++;
      } catch (e) {
        failures++;
        noteError(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  emit({
    ev: "done",
    logins,
    failures,
    elapsed_s: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    first_error: firstError || undefined,
  });
}

// ---------------------------------------------------------------- control

async function* stdinLines(): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let pending = "";
  for await (const chunk of Deno.stdin.readable) {
    pending += dec.decode(chunk, { stream: true });
    let i;
    while ((i = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, i);
      pending = pending.slice(i + 1);
    }
  }
}

async function main(): Promise<void> {
  setTimeout(() => {
    emit({ ev: "error", message: "lifetime exceeded" });
    Deno.exit(3);
  }, cfg.lifetimeMs ?? 300_000);
  void TS_DIGITS;
  let start: () => void = () => {};
  try {
    if (cfg.mode === "spm") start = await setupSpm();
    else if (cfg.mode === "sma") start = await setupSma();
    else if (cfg.mode === "link") start = await setupLink();
    else if (cfg.mode !== "connect") throw new Error(`unknown mode ${cfg.mode}`);
  } catch (e) {
    fail(e);
  }
  emit({ ev: "ready" });
  for await (const line of stdinLines()) {
    const cmd = line.trim();
    if (cmd === "go") {
      if (cfg.mode === "connect") runConnect().catch(fail);
      else {
        mark();
        start();
      }
    } else if (cmd === "mark") mark();
    else if (cmd === "stop") {
      const r = result();
      stopping = true;
      emit(r);
    } else if (cmd === "quit") break;
  }
  stopping = true;
  for (const c of held) c.destroy();
  Deno.exit(0);
}

if (import.meta.main) await main();
