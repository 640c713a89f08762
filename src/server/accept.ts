/**
 * What happens to a connection between `accept` and being served. A client
 * connection, from whichever listener: identify (its real address: the PROXY
 * header of a trusted balancer, its descriptor counted while it is read) →
 * admission (per-address limits, descriptor budget) → serve; or refuse
 * (counted, logged at a bounded rate, closed). A bridge connection: a
 * descriptor of its own, then the link broker.
 *
 * The pipeline takes any Deno.Conn. What depends on the kind of listener
 * stays with the listener: TCP socket options (`tuneTcp`) before `take`; a
 * listener whose connections are identified otherwise (a WebSocket upgrade's
 * request) enters at `admit`; a wait before identification (a TLS
 * handshake) is one more promise `take` holds like the PROXY header's.
 */
import { closeQuietly, errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { WarnThrottle } from "../lib/rate.ts";
import type { Metrics } from "./metrics.ts";
import type { Admission, Ticket } from "./limits/admission.ts";
import type { FdBudget, Slot } from "./limits/fd_budget.ts";
import type { Identified } from "./net/client_address.ts";

/** The TCP client listener's own step: options every chat socket gets. */
export function tuneTcp(conn: Deno.TcpConn): void {
  try {
    conn.setNoDelay(true);
    // An idle chat user's connection may cross NATs and balancers that drop silent flows.
    conn.setKeepAlive(true);
  } catch {
    // reset before we got to it: the first read will say so
  }
}

export interface ClientPipelineDeps {
  admission: Admission;
  budget: FdBudget;
  metrics: Metrics;
  /** Refusals a client can cause at will: rate limited. */
  warn: WarnThrottle;
  /** Who a connection is: at once, or once its PROXY header is read (client_address.ts). */
  identify(conn: Deno.Conn): Identified | Promise<Identified>;
  /** Serves an admitted connection until it closes (chat/connection.ts). */
  serve(conn: Deno.Conn, ticket: Ticket, initial: Uint8Array, onClose: () => void): Promise<void>;
}

/** Client connections from accept to served, and every one of them until shutdown. */
export class ClientPipeline {
  #d: ClientPipelineDeps;
  /** Connections being identified or served: shutdown closes them. */
  #open = new Set<Deno.Conn>();
  /** What shutdown waits for: each connection's handler. */
  #handlers = new Set<Promise<void>>();

  constructor(deps: ClientPipelineDeps) {
    this.#d = deps;
  }

  /** A new connection from a client listener. */
  take(conn: Deno.Conn): void {
    this.#d.metrics.connectionsOpened++;
    const who = this.#d.identify(conn);
    if (who instanceof Promise) this.#hold(conn, who);
    else this.admit(conn, who);
  }

  /**
   * A trusted balancer's connection: admitted under its client's address
   * once the header is read. Its descriptor counts meanwhile.
   */
  #hold(conn: Deno.Conn, who: Promise<Identified>): void {
    const waiting = this.#d.budget.tryAcquire("chat");
    if (!waiting) return this.#refuse(conn, "(PROXY header pending)", "fd_budget");
    this.#open.add(conn);
    this.#track(who.then((w) => {
      this.#open.delete(conn);
      waiting.release(); // admission takes the connection's own slot, in the same turn
      this.admit(conn, w);
    }));
  }

  /** Admits an identified connection under its real address and serves it, or refuses it. */
  admit(conn: Deno.Conn, who: Identified): void {
    const { metrics, warn } = this.#d;
    if (!who.ok) {
      metrics.proxyHeaderRefused++;
      metrics.refuse("proxy_header");
      warn.warn("connection refused: PROXY header", { peer: who.address, reason: who.reason });
      closeQuietly(conn);
      return;
    }
    const ticket = this.#d.admission.admit(who.address);
    if (typeof ticket === "string") return this.#refuse(conn, who.address, ticket);
    this.#open.add(conn);
    this.#track(this.#d.serve(conn, ticket, who.initial, () => this.#open.delete(conn)));
  }

  /** Closes a client connection the node will not serve, counted and logged (rate-limited). */
  #refuse(conn: Deno.Conn, address: string, reason: string): void {
    this.#d.metrics.connectionsRejected++;
    this.#d.metrics.refuse(reason);
    this.#d.warn.warn("connection refused", { address, reason });
    closeQuietly(conn);
  }

  #track(handler: Promise<void>): void {
    this.#handlers.add(handler);
    void handler.finally(() => this.#handlers.delete(handler));
  }

  /** Shutdown: closes every connection being identified or served, and waits for their handlers. */
  async closeAll(): Promise<void> {
    for (const c of this.#open) closeQuietly(c);
    await Promise.allSettled([...this.#handlers]);
  }
}

export interface BridgeArrivalDeps {
  budget: FdBudget;
  metrics: Metrics;
  warn: WarnThrottle;
  log: Logger;
  links: { acceptBridge(conn: Deno.Conn, slot: Slot): Promise<void> };
}

/** What the bridge listener does with a new connection: a descriptor of its own, then the broker. */
export function bridgeArrivals(deps: BridgeArrivalDeps): (conn: Deno.Conn) => void {
  const { budget, metrics, warn, log, links } = deps;
  return (conn) => {
    const slot = budget.tryAcquire("bridge");
    if (!slot) {
      metrics.refuse("fd_budget");
      warn.warn("bridge connection refused: descriptor budget spent", {});
      closeQuietly(conn);
      return;
    }
    void links.acceptBridge(conn, slot).catch((e) =>
      log.warn("bridge connection failed", { error: errorMessage(e) })
    );
  };
}
