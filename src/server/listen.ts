/**
 * The accept loop every listener of the node runs (clients, bridge, admin).
 * A failed accept (a peer that reset before we got to it, or no descriptors
 * left: EMFILE/ENFILE) is counted, logged at a bounded rate and retried after
 * a back-off that grows while the failures last: it never stops the node
 * from accepting, and never spins.
 */
import { sleep } from "../lib/async.ts";
import { errorMessage } from "../lib/errors.ts";
import type { WarnThrottle } from "../lib/rate.ts";
import type { Metrics } from "./metrics.ts";

const BACKOFF_MIN_MS = 10;
const BACKOFF_MAX_MS = 1000;

export interface AcceptDeps {
  /** True once the node is shutting down: an accept error then ends the loop. */
  draining(): boolean;
  warn: WarnThrottle;
  metrics: Metrics;
}

/** True for "no descriptors left", process-wide or system-wide. */
function outOfDescriptors(e: unknown): boolean {
  const m = errorMessage(e);
  return m.includes("Too many open files") || /EMFILE|ENFILE/.test(m);
}

/** Accepts until the listener is closed, handing each connection to `onConn`. */
export async function acceptEach<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  deps: AcceptDeps,
  onConn: (conn: C) => void,
): Promise<void> {
  let backoff = 0;
  while (true) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (e) {
      if (
        deps.draining() || e instanceof Deno.errors.BadResource ||
        e instanceof Deno.errors.Interrupted
      ) {
        return;
      }
      deps.metrics.acceptErrors++;
      deps.warn.warn("accept failed", { error: errorMessage(e) });
      if (outOfDescriptors(e)) {
        // Give closing sockets a moment instead of spinning; longer while it lasts.
        backoff = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, backoff * 2));
        await sleep(backoff);
      }
      continue;
    }
    backoff = 0;
    onConn(conn);
  }
}
