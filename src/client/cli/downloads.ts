/**
 * `--downloads` is checked at start, so a bad folder is said before anyone
 * sends a file rather than when a transfer fails. It need not exist yet (it is
 * made on the first download): then its nearest existing parent is checked.
 */
import * as path from "node:path";
import { errorMessage } from "../../lib/errors.ts";

/** Why files could not be saved in `dir`, or null. */
export async function downloadsProblem(dir: string): Promise<string | null> {
  for (let at = dir;; at = path.dirname(at)) {
    const made = at === dir ? dir : `${dir} cannot be made: ${at}`;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(at);
    } catch (e) {
      const missing = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
      if (missing && path.dirname(at) !== at) continue; // a parent decides
      return refusal(made, e);
    }
    if (!info.isDirectory) return `${made} is a file, not a folder`;
    // Permission bits do not tell (root, read-only mounts, immutable folders): try it.
    try {
      await Deno.remove(await Deno.makeTempDir({ dir: at, prefix: ".chatos-write-check-" }));
    } catch (e) {
      return refusal(made, e);
    }
    return null;
  }
}

function refusal(what: string, e: unknown): string {
  // Deno lets /proc, /dev and /sys be written only with --allow-all: not a place for downloads.
  if (e instanceof Deno.errors.NotCapable) {
    return `${what} is in a system folder (/proc, /dev, /sys)`;
  }
  if (e instanceof Deno.errors.PermissionDenied) return `${what} is not writable for you`;
  return `${what} cannot be used (${errorMessage(e)})`;
}
