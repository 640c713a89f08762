/**
 * Ceiling for SMA fan-out: a minimal broadcaster that speaks just enough
 * ChatOS for the load generator (CR → ERROR 1; SMA → ERROR 1 to the sender
 * and the frame to everyone else). Each read's frames are copied once and
 * every receiver queues views of the same bytes (encode once); each socket
 * gets one write per event-loop tick with everything queued for it (the
 * design MEASURED.md found fastest). No validation, no presence, no actors.
 *
 * Usage: deno run -A bench/ceiling_broadcaster.ts --port N [--read-buffer BYTES]
 *        [--tick immediate|timeout]
 * (64 KiB reads by default; the idle-session floor uses 1 KiB, like the server.)
 * Exits when its stdin closes (the orchestrator holds it open).
 */
import { setImmediate } from "node:timers";
import { parseArgs } from "node:util";
import { writeAll } from "../src/lib/async.ts";
import { closeQuietly } from "../src/lib/errors.ts";
import { frameLength, OK, OP_CR, OP_SMA } from "./wire.ts";
import { runCeiling } from "./ceiling_listen.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    "read-buffer": { type: "string", default: String(64 * 1024) },
    tick: { type: "string", default: "immediate" },
  },
});
// The end of the tick: setImmediate runs right after this turn's I/O
// callbacks; setTimeout(0) waits for the timer phase, >= 1 ms in Deno 2.
const defer: (f: () => void) => unknown = values.tick === "timeout"
  ? (f) => setTimeout(f, 0)
  : setImmediate;
const READ = Number(values["read-buffer"]);

const OKS = new Uint8Array(2 * 8192);
for (let i = 0; i < 8192; i++) OKS.set(OK, 2 * i);

class Peer {
  conn: Deno.Conn;
  queue: Uint8Array[] = [];
  scheduled = false;
  closed = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  push(b: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(b);
    if (!this.scheduled) {
      this.scheduled = true;
      defer(this.flush);
    }
  }

  flush = async (): Promise<void> => {
    try {
      while (this.queue.length > 0 && !this.closed) {
        const q = this.queue;
        this.queue = [];
        let size = 0;
        for (const c of q) size += c.length;
        let buf: Uint8Array;
        if (q.length === 1) buf = q[0];
        else {
          buf = new Uint8Array(size);
          let off = 0;
          for (const c of q) {
            buf.set(c, off);
            off += c.length;
          }
        }
        await writeAll(this.conn, buf);
      }
    } catch {
      this.close();
    } finally {
      this.scheduled = false;
    }
  };

  close(): void {
    this.closed = true;
    this.queue = [];
    members.delete(this);
    closeQuietly(this.conn);
  }
}

const members = new Set<Peer>();

async function serve(conn: Deno.Conn): Promise<void> {
  const me = new Peer(conn);
  const buf = new Uint8Array(READ);
  let held = 0;
  try {
    while (true) {
      const n = await conn.read(buf.subarray(held));
      if (n === null) break;
      const end = held + n;
      // Find the whole frames, then copy them once for everybody.
      let p = 0;
      while (true) {
        const len = frameLength(buf, p, end);
        if (len < 0) break;
        p += len;
      }
      const batch = buf.slice(0, p);
      let acks = 0;
      for (let off = 0; off < p;) {
        const len = frameLength(batch, off, p);
        const op = batch[off];
        if (op === OP_SMA) {
          const f = batch.subarray(off, off + len);
          for (const m of members) if (m !== me) m.push(f);
          acks++;
        } else if (op === OP_CR) {
          members.add(me);
          acks++;
        }
        off += len;
      }
      while (acks > 0) {
        const k = Math.min(acks, 8192);
        me.push(OKS.subarray(0, 2 * k));
        acks -= k;
      }
      buf.copyWithin(0, p, end);
      held = end - p;
    }
  } catch { /* reset */ }
  me.close();
}

await runCeiling(values.host!, Number(values.port ?? 0), serve);
