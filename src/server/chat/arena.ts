/**
 * Copies of relayed frames, carved out of shared 64 KiB blocks instead of one
 * allocation each. A relayed frame must outlive the read buffer it arrived
 * in (the buffer is reused for the next read), but allocating an ArrayBuffer
 * per frame was the largest cost of relaying an SPM: measured in
 * docs/PERFORMANCE.md, carving them out of a block took SPM relay from ~570k
 * to ~1.05M msgs/s.
 *
 * A block lives as long as any frame carved from it is queued somewhere; the
 * outbound queue copies such a frame out before holding it for a slow reader
 * (see OutboundQueue), so one slow client cannot pin many blocks.
 *
 * Frames over 4 KiB get a buffer of their own, taken from a pool: the one
 * outbound queue a frame is handed to gives the buffer back once written
 * (`recycleFrame`). Allocating one per frame instead left V8 to collect them
 * by the external bytes they add up to, ~64 MiB at a time: relaying 32 KiB
 * SPMs to 40 readers that read grew RSS by ~120 MiB (docs/PERFORMANCE.md).
 */

const BLOCK_SIZE = 64 * 1024;
/** Frames larger than this get a (pooled) buffer of their own. */
const MAX_CARVED = 4 * 1024;

let block = new Uint8Array(BLOCK_SIZE);
let used = 0;

/**
 * An immutable copy of `bytes` that stays valid after the source is
 * overwritten. Hand it to at most one outbound queue: a large frame's buffer
 * goes back to the pool once that queue has written or copied it.
 */
export function keepFrame(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n > MAX_CARVED) {
    const copy = takePooled(n);
    copy.set(bytes);
    return copy;
  }
  if (used + n > BLOCK_SIZE) {
    // Never reuse a block: frames carved from it may still be queued.
    block = new Uint8Array(BLOCK_SIZE);
    used = 0;
  }
  const copy = block.subarray(used, used + n);
  copy.set(bytes);
  used += n;
  return copy;
}

/** Pooled buffers are sized in steps of this: at most 4 KiB unused per frame. */
const POOL_STEP = 4 * 1024;
/** What the free lists keep at most, all sizes together; past it, buffers are left to the GC. */
const POOL_MAX_BYTES = 4 * 1024 * 1024;

/** Free buffers by size step (index: capacity / POOL_STEP). */
const free: ArrayBuffer[][] = [];
let freeBytes = 0;
/** Buffers handed out and not yet given back: only these may be recycled, once. */
const lent = new WeakSet<ArrayBuffer>();

function takePooled(n: number): Uint8Array {
  const step = Math.ceil(n / POOL_STEP);
  let buffer = free[step]?.pop();
  if (buffer === undefined) buffer = new ArrayBuffer(step * POOL_STEP);
  else freeBytes -= buffer.byteLength;
  lent.add(buffer);
  return new Uint8Array(buffer, 0, n);
}

/**
 * Gives a pooled frame's buffer back once nothing will read it again (it was
 * written, or copied). Anything else (a carved or foreign frame, or one given
 * back already) is ignored.
 */
export function recycleFrame(bytes: Uint8Array): void {
  const buffer = bytes.buffer as ArrayBuffer;
  if (!lent.delete(buffer)) return;
  if (freeBytes + buffer.byteLength > POOL_MAX_BYTES) return;
  (free[buffer.byteLength / POOL_STEP] ??= []).push(buffer);
  freeBytes += buffer.byteLength;
}

/**
 * True if `bytes` is, near enough, its whole buffer (a pooled frame, a copy,
 * an encoded frame): keeping it costs the buffer and nothing else. False for
 * a view into a buffer shared with other frames (a Redis relay batch, say).
 */
export function ownsItsBuffer(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.buffer.byteLength - bytes.length < POOL_STEP;
}

/** A view holding on to a buffer much larger than itself (a carved frame, a slice of a socket read). */
export function pinsLargerBuffer(bytes: Uint8Array): boolean {
  return bytes.byteLength * 4 < bytes.buffer.byteLength;
}
