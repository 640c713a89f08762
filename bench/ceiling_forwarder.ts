/**
 * Ceiling for SPM and private-link throughput: the least a Deno server can do
 * to move bytes between two sockets. Two connections that open with the same
 * 4-byte key are paired, and each direction is a `conn.read` → `conn.write`
 * loop on a 64 KiB buffer (the fastest style in MEASURED.md). No parsing, no
 * acks, no presence: whatever ChatOS adds on top shows as ours/ceiling < 1.
 *
 * Usage: deno run -A bench/ceiling_forwarder.ts --port N
 * Exits when its stdin closes (the orchestrator holds it open).
 */
import { parseArgs } from "node:util";
import { writeAll } from "../src/lib/async.ts";
import { closeQuietly } from "../src/lib/errors.ts";
import { runCeiling } from "./ceiling_listen.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { port: { type: "string" }, host: { type: "string", default: "127.0.0.1" } },
});

const waiting = new Map<number, { conn: Deno.Conn; extra: Uint8Array }>();

async function copy(from: Deno.Conn, to: Deno.Conn, first: Uint8Array): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    if (first.length > 0) await writeAll(to, first);
    while (true) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
  } catch { /* reset: close both */ }
  closeQuietly(from);
  closeQuietly(to);
}

async function serve(conn: Deno.Conn): Promise<void> {
  const head = new Uint8Array(1024);
  let got = 0;
  while (got < 4) {
    const n = await conn.read(head.subarray(got));
    if (n === null) return conn.close();
    got += n;
  }
  const key = new DataView(head.buffer).getUint32(0);
  const extra = head.slice(4, got);
  const other = waiting.get(key);
  if (!other) {
    waiting.set(key, { conn, extra });
    return;
  }
  waiting.delete(key);
  void copy(conn, other.conn, extra);
  void copy(other.conn, conn, other.extra);
}

await runCeiling(values.host!, Number(values.port ?? 0), serve);
