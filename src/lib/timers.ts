/**
 * Timers that never keep the process alive on their own (housekeeping:
 * expiries, login deadlines). Deno 2.9's setTimeout returns a Node-style
 * Timeout object while `Deno.unrefTimer` is typed for a number id; the casts
 * that bridge the two live here only.
 */
export type TimerId = ReturnType<typeof setTimeout>;

export function unrefTimeout(fn: () => void, ms: number): TimerId {
  const id = setTimeout(fn, ms);
  Deno.unrefTimer(id as unknown as number);
  return id;
}

export function clearTimer(id: TimerId | undefined): void {
  if (id !== undefined) clearTimeout(id);
}

/** A repeating timer that does not keep the process alive; stop it with `clearTimer`. */
export function unrefInterval(fn: () => void, ms: number): TimerId {
  const id = setInterval(fn, ms);
  Deno.unrefTimer(id as unknown as number);
  return id;
}
