import type { HandshakeKey } from "../protocol/frames.ts";
import { LocalUsers } from "./local_users.ts";
import {
  handshakeId,
  type Inbox,
  type LinkEndpoint,
  pairId,
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
  #strikes = new Map<string, number[]>();
  #now: () => number;

  constructor(opts: { nodeId?: string; now?: () => number } = {}) {
    this.nodeId = opts.nodeId ?? "local";
    this.#now = opts.now ?? Date.now;
  }

  reserve(pseudo: string, inbox: Inbox): Promise<ReserveResult> {
    return Promise.resolve(this.users.add(pseudo, inbox) ? "ok" : "taken");
  }

  release(pseudo: string, inbox: Inbox): Promise<void> {
    this.users.remove(pseudo, inbox);
    return Promise.resolve();
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
      this.#handshakes.delete(id);
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
    return Promise.resolve(true);
  }

  cancelHandshake(key: HandshakeKey): Promise<boolean> {
    const p = this.#live(key);
    if (p) this.#handshakes.delete(handshakeId(key));
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
    this.#handshakes.delete(handshakeId(key));
    return Promise.resolve(p.endpoint);
  }

  cancelPair(a: string, b: string): Promise<HandshakeKey[]> {
    const out: HandshakeKey[] = [];
    for (const [id, p] of this.#handshakes) {
      if (p.key.a === a && p.key.b === b) {
        this.#handshakes.delete(id);
        if (p.expiresAt > this.#now()) out.push(p.key);
      }
    }
    return Promise.resolve(out);
  }

  strike(a: string, b: string, windowMs: number): Promise<number> {
    const id = pairId(a, b);
    const now = this.#now();
    const recent = (this.#strikes.get(id) ?? []).filter((t) => t > now - windowMs);
    recent.push(now);
    this.#strikes.set(id, recent);
    // Keep the map from growing without bound under a spray of pair names.
    if (this.#strikes.size > 10_000) {
      for (const [k, ts] of this.#strikes) {
        if (ts[ts.length - 1] <= now - windowMs) this.#strikes.delete(k);
      }
    }
    return Promise.resolve(recent.length);
  }

  close(): Promise<void> {
    this.users.clear();
    this.#handshakes.clear();
    return Promise.resolve();
  }
}
