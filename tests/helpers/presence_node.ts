/**
 * One node under test, wired as the server wires it: the node's own users (the real LocalUsers)
 * and a presence store made for them. Its conveniences do what a session does: log in and out
 * through the registry, and send to a user of this node at once, else through the relay.
 */
import { silentLogger } from "../../src/lib/log.ts";
import {
  bareClaim,
  type Claim,
  type MaybePromise,
  type NodeUsers,
  type Presence,
  type ReserveResult,
} from "../../src/presence/presence.ts";
import { type LocalUser, LocalUsers } from "../../src/server/local_users.ts";

/** A user's end: keeps what it is delivered, and whether the node evicted it. */
export class RecordingInbox implements LocalUser {
  frames: Uint8Array[] = [];
  evictions: string[] = [];
  #waiters: Array<() => void> = [];

  deliver(frame: Uint8Array): void {
    this.frames.push(frame);
    this.#wake();
  }

  evict(reason: string): void {
    this.evictions.push(reason);
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves once at least `n` frames have arrived (cross-node delivery is asynchronous). */
  waitFor(n: number, ms = 2000): Promise<void> {
    return this.#until(() => this.frames.length >= n, ms, () => `${n} frames`);
  }

  /** Resolves once the node has evicted this user. */
  evicted(ms = 5000): Promise<void> {
    return this.#until(() => this.evictions.length > 0, ms, () => "an eviction");
  }

  async #until(done: () => boolean, ms: number, what: () => string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`expected ${what()}, got ${this.frames.length} frames, ${this.evictions}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

export class TestNode<P extends Presence = Presence> {
  readonly users = new LocalUsers<RecordingInbox>(silentLogger);
  readonly presence: P;

  /** `make` builds the store for this node's users, as the server does. */
  constructor(make: (users: NodeUsers) => P) {
    this.presence = make(this.users);
  }

  get nodeId(): string {
    return this.presence.nodeId;
  }

  get directory() {
    return this.presence.directory;
  }

  get handshakes() {
    return this.presence.handshakes;
  }

  get relay() {
    return this.presence.relay;
  }

  login(
    pseudo: string,
    inbox = new RecordingInbox(),
    claim: Claim = bareClaim(pseudo),
  ): Promise<ReserveResult> {
    return this.users.login(pseudo, claim, inbox, this.presence);
  }

  logout(pseudo: string, inbox: RecordingInbox): Promise<void> {
    return this.users.logout(pseudo, inbox, this.presence);
  }

  /** As a session sends: to a user of this node, else through the relay. */
  send(to: string, frame: Uint8Array): MaybePromise<boolean> {
    return this.users.send(to, frame) || this.presence.relay.send(to, frame);
  }

  /** As a session broadcasts: this node's users, then the relay. */
  broadcast(frame: Uint8Array, except: string): MaybePromise<void> {
    this.users.fanOut(frame, except);
    return this.presence.relay.broadcast(frame, except);
  }

  /** What an SMA from this node reaches (flood control's count). */
  userCount(): number {
    return this.users.size + this.presence.relay.remoteUsers;
  }

  /** As the link guard asks: this node's users first, else the directory. */
  clientOf(pseudo: string): MaybePromise<string | null> {
    const local = this.users.clientOf(pseudo);
    return local !== undefined ? local || null : this.presence.directory.clientOf(pseudo);
  }

  close(): Promise<void> {
    return this.presence.close();
  }
}
