/**
 * Presence for one process, the embedded default: the directory and the handshake registry are
 * maps, and there is no other node to relay to.
 */
import { handshakeId, type HandshakeKey } from "../protocol/frames.ts";
import { ClaimTable } from "./claims.ts";
import { StrikeLedger } from "./strike_ledger.ts";
import {
  type Claim,
  type Directory,
  type HandshakeRegistry,
  type LinkEndpoint,
  type Presence,
  type Relay,
  type ReserveResult,
} from "./presence.ts";

/** Who holds which pseudonym, when this process is the only node. */
export class MemoryDirectory implements Directory {
  readonly #claims = new ClaimTable();

  reserve(pseudo: string, claim: Claim): Promise<ReserveResult> {
    return Promise.resolve(this.#claims.hold(pseudo, claim) ? "ok" : "taken");
  }

  release(pseudo: string): Promise<void> {
    this.#claims.drop(pseudo);
    return Promise.resolve();
  }

  clientOf(pseudo: string): Promise<string | null> {
    return Promise.resolve(this.#claims.get(pseudo)?.client || null);
  }

  clear(): void {
    this.#claims.clear();
  }
}

interface Pending {
  key: HandshakeKey;
  expiresAt: number;
  endpoint: LinkEndpoint | null;
}

/** The pending handshakes of this process, with their strikes. */
export class MemoryHandshakeRegistry implements HandshakeRegistry {
  #handshakes = new Map<string, Pending>();
  /** Strikes of each pending handshake, by handshake id. */
  #strikes = new StrikeLedger<string>();
  #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #live(key: HandshakeKey): Pending | undefined {
    const id = handshakeId(key);
    const p = this.#handshakes.get(id);
    if (p && p.expiresAt <= this.#now()) {
      this.#drop(id);
      return undefined;
    }
    return p;
  }

  open(key: HandshakeKey, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return Promise.resolve(false);
    this.#handshakes.set(handshakeId(key), {
      key: { ...key },
      expiresAt: this.#now() + ttlMs,
      endpoint: null,
    });
    this.#strikes.open(handshakeId(key));
    return Promise.resolve(true);
  }

  cancel(key: HandshakeKey): Promise<boolean> {
    const p = this.#live(key);
    if (p) this.#drop(handshakeId(key));
    return Promise.resolve(p !== undefined);
  }

  accept(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean> {
    const p = this.#live(key);
    if (!p || p.endpoint) return Promise.resolve(false);
    p.endpoint = endpoint;
    return Promise.resolve(true);
  }

  claim(key: HandshakeKey): Promise<LinkEndpoint | null> {
    const p = this.#live(key);
    if (!p || !p.endpoint) return Promise.resolve(null);
    this.#drop(handshakeId(key));
    return Promise.resolve(p.endpoint);
  }

  cancelPair(a: string, b: string): Promise<HandshakeKey[]> {
    const out: HandshakeKey[] = [];
    for (const [id, p] of this.#handshakes) {
      if (p.key.a === a && p.key.b === b) {
        this.#drop(id);
        if (p.expiresAt > this.#now()) out.push(p.key);
      }
    }
    return Promise.resolve(out);
  }

  strikePair(a: string, b: string, budget: number): Promise<HandshakeKey[]> {
    const pending: string[] = [];
    for (const [id, p] of this.#handshakes) {
      if (p.key.a === a && p.key.b === b && this.#live(p.key)) pending.push(id);
    }
    const out: HandshakeKey[] = [];
    for (const id of this.#strikes.strike(pending, budget)) {
      out.push(this.#handshakes.get(id)!.key);
      this.#handshakes.delete(id);
    }
    return Promise.resolve(out);
  }

  #drop(id: string): void {
    this.#handshakes.delete(id);
    this.#strikes.close(id);
  }

  clear(): void {
    this.#handshakes.clear();
    this.#strikes.clear();
  }
}

/** One node: nobody else to send to, and nobody else a broadcast reaches. */
const NO_OTHER_NODES: Relay = {
  send: () => false,
  broadcast: () => {},
  remoteUsers: 0,
  available: true,
  listen: () => {},
  unlisten: () => {},
};

/** Presence for one process. */
export class MemoryPresence implements Presence {
  readonly nodeId: string;
  readonly directory = new MemoryDirectory();
  readonly handshakes: MemoryHandshakeRegistry;
  readonly relay = NO_OTHER_NODES;

  constructor(opts: { nodeId?: string; now?: () => number } = {}) {
    this.nodeId = opts.nodeId ?? "local";
    this.handshakes = new MemoryHandshakeRegistry(opts.now);
  }

  close(): Promise<void> {
    this.directory.clear();
    this.handshakes.clear();
    return Promise.resolve();
  }
}
