/**
 * Joins chunks[start..end) (all of them by default) into one buffer; a single
 * chunk is returned as is (no copy).
 */
export function concatBytes(
  chunks: readonly Uint8Array[],
  start = 0,
  end = chunks.length,
): Uint8Array {
  if (end - start === 1) return chunks[start];
  let size = 0;
  for (let i = start; i < end; i++) size += chunks[i].length;
  const out = new Uint8Array(size);
  for (let i = start, off = 0; i < end; off += chunks[i].length, i++) out.set(chunks[i], off);
  return out;
}
