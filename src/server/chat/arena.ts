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
 */

const BLOCK_SIZE = 64 * 1024;
/** Frames larger than this get a buffer of their own. */
const MAX_CARVED = 4 * 1024;

let block = new Uint8Array(BLOCK_SIZE);
let used = 0;

/** An immutable copy of `bytes` that stays valid after the source is overwritten. */
export function keepFrame(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n > MAX_CARVED) return bytes.slice();
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

/** A view holding on to a buffer much larger than itself (a carved frame, a slice of a socket read). */
export function pinsLargerBuffer(bytes: Uint8Array): boolean {
  return bytes.byteLength * 4 < bytes.buffer.byteLength;
}
