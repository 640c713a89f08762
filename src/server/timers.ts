/**
 * Timers that never keep the process alive on their own (housekeeping:
 * expiries, login deadlines). Deno's timer ids are numbers at run time; the
 * node typings loaded by `node:` imports disagree, hence the casts here only.
 */
export type TimerId = number;

export function unrefTimeout(fn: () => void, ms: number): TimerId {
  const id = setTimeout(fn, ms) as unknown as number;
  Deno.unrefTimer(id);
  return id;
}

export function unrefInterval(fn: () => void, ms: number): TimerId {
  const id = setInterval(fn, ms) as unknown as number;
  Deno.unrefTimer(id);
  return id;
}

export function clearTimer(id: TimerId | undefined): void {
  if (id !== undefined) clearTimeout(id as unknown as Parameters<typeof clearTimeout>[0]);
}
