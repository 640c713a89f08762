/**
 * The cluster secret's rule. It keys the HMAC of every bridge greeting, so a
 * guessable one lets a stranger on the bridge port join private links: it
 * must be at least 32 bytes (`openssl rand -hex 32` gives 64), and never a
 * placeholder a README or compose file once showed.
 */

export const MIN_SECRET_BYTES = 32;

/** Placeholders seen in docs and compose files ("change-me…", "changeme…"). */
const PLACEHOLDER = /change-?me/i;

/** Why `secret` may not be used, or null. Never quotes the secret itself. */
export function secretProblem(secret: string): string | null {
  const bytes = new TextEncoder().encode(secret).length;
  if (bytes === 0) return "is missing";
  if (PLACEHOLDER.test(secret)) return "is a placeholder from an example, not a secret";
  if (bytes < MIN_SECRET_BYTES) return `is only ${bytes} bytes`;
  return null;
}
