import { handshakeId, type HandshakeKey } from "../protocol/frames.ts";
import { LocalUsers } from "./local_users.ts";
import { StrikeLedger } from "./strike_ledger.ts";
import {
  bareClaim,
  type Claim,
  type Inbox,
  type LinkEndpoint,
  type Presence,
  type ReserveResult,
} from "./presence.ts";

interface Pending {
  key: HandshakeKey;
  expiresAt: number;
  endpoint: LinkEndpoint | null;
}

/** Presence for one process: everything lives in maps. The embedded default. */
export class MemoryPresence implements Presence {
  readonly nodeId: string;
  readonly users = new LocalUsers();
  #handshakes = new Map<string, Pending>();
  /** Strikes of each pending handshake, by handshake id. */
  #strikes = new StrikeLedger<string>();
  /** Name key → the pseudo holding it. */
  #names = new Map<string, string>();
  /** Pseudo → what it holds. */
  #claims = new Map<string, Claim>();
  #now: () => number;

  constructor(opts: { nodeId?: string; now?: () => number } = {}) {
    this.nodeId = opts.nodeId ?? "local";
    this.#now = opts.now ?? Date.now;
  }

  reserve(pseudo: string, inbox: Inbox, claim: Claim = bareClaim(pseudo)): Promise<ReserveResult> {
    if (claim.keys.some((k) => this.#names.has(k)) || !this.users.add(pseudo, inbox)) {
      return Promise.resolve("taken");
    }
    for (const k of claim.keys) this.#names.set(k, pseudo);
    this.#claims.set(pseudo, claim);
    return Promise.resolve("ok");
  }

  release(pseudo: string, inbox: Inbox): Promise<void> {
    if (this.users.remove(pseudo, inbox)) {
      for (const k of this.#claims.get(pseudo)?.keys ?? []) {
        if (this.#names.get(k) === pseudo) this.#names.delete(k);
      }
      this.#claims.delete(pseudo);
    }
    return Promise.resolve();
  }

  clientOf(pseudo: string): Promise<string | null> {
    return Promise.resolve(this.#claims.get(pseudo)?.client || null);
  }

  userCount(): number {
    return this.users.size;
  }

  send(to: string, frame: Uint8Array): boolean {
    const inbox = this.users.get(to);
    inbox?.deliver(frame);
    return inbox !== undefined;
  }

  broadcast(frame: Uint8Array, except: string): void {
    this.users.fanOut(frame, except);
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

  openHandshake(key: HandshakeKey, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return Promise.resolve(false);
    this.#handshakes.set(handshakeId(key), {
      key: { ...key },
      expiresAt: this.#now() + ttlMs,
      endpoint: null,
    });
    this.#strikes.open(handshakeId(key));
    return Promise.resolve(true);
  }

  cancelHandshake(key: HandshakeKey): Promise<boolean> {
    const p = this.#live(key);
    if (p) this.#drop(handshakeId(key));
    return Promise.resolve(p !== undefined);
  }

  acceptHandshake(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean> {
    const p = this.#live(key);
    if (!p || p.endpoint) return Promise.resolve(false);
    p.endpoint = endpoint;
    return Promise.resolve(true);
  }

  claimHandshake(key: HandshakeKey): Promise<LinkEndpoint | null> {
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

  close(): Promise<void> {
    this.users.clear();
    this.#names.clear();
    this.#claims.clear();
    this.#handshakes.clear();
    this.#strikes.clear();
    return Promise.resolve();
  }
}
