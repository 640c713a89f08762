/** Error helpers: one way to read a message, one way to close what may already be closed. */

/** The message of a thrown value, whatever was thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Closes a socket, listener or file that may already be closed. Closing twice
 * throws `BadResource` in Deno, which says nothing worth reporting here.
 */
export function closeQuietly(resource: { close(): void } | null | undefined): void {
  if (!resource) return;
  try {
    resource.close();
  } catch {
    // already closed
  }
}
