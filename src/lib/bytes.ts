/** Joins chunks into one buffer; a single chunk is returned as is (no copy). */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** True when `b` holds `x` at offset `at`. */
export function bytesEqualAt(b: Uint8Array, at: number, x: Uint8Array): boolean {
  if (at + x.length > b.length) return false;
  for (let i = 0; i < x.length; i++) if (b[at + i] !== x[i]) return false;
  return true;
}
