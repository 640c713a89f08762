/** Small async helpers shared by the server, the client, the ops tools and the bench. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Settles as `p` does, or rejects with `onTimeout()`'s error after `ms`.
 * The timer is always cleared, and a late rejection of `p` is not left unhandled.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  p.catch(() => {}); // the deadline may win; p's own rejection then has no reader
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Anything with Deno's `write` shape: a socket, a file, a test double. */
export interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

/** Writes every byte of `b`; `write` may take fewer than offered. */
export async function writeAll(w: ByteWriter, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await w.write(b.subarray(off));
}

/** Anything with Deno's `read` shape. */
export interface ByteReader {
  read(p: Uint8Array): Promise<number | null>;
}

/** Reads exactly `n` bytes, however many calls it takes; throws if the stream ends first. */
export async function readExactly(r: ByteReader, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await r.read(out.subarray(got));
    if (k === null) throw new Error(`stream ended after ${got} of ${n} bytes`);
    got += k;
  }
  return out;
}
