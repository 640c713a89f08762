import type { Inbox } from "./presence.ts";

/** The users logged in on this node and their inboxes. Both stores use it for local fan-out. */
export class LocalUsers {
  #byPseudo = new Map<string, Inbox>();

  get size(): number {
    return this.#byPseudo.size;
  }

  get(pseudo: string): Inbox | undefined {
    return this.#byPseudo.get(pseudo);
  }

  /** False if the pseudo is already bound on this node. */
  add(pseudo: string, inbox: Inbox): boolean {
    if (this.#byPseudo.has(pseudo)) return false;
    this.#byPseudo.set(pseudo, inbox);
    return true;
  }

  /** Removes the binding only if it is still `inbox`'s. */
  remove(pseudo: string, inbox: Inbox): boolean {
    if (this.#byPseudo.get(pseudo) !== inbox) return false;
    this.#byPseudo.delete(pseudo);
    return true;
  }

  /** Delivers the same bytes to every local user but `except`; returns how many. */
  fanOut(frame: Uint8Array, except: string): number {
    let n = 0;
    for (const [pseudo, inbox] of this.#byPseudo) {
      if (pseudo === except) continue;
      inbox.deliver(frame);
      n++;
    }
    return n;
  }

  pseudos(): IterableIterator<string> {
    return this.#byPseudo.keys();
  }

  clear(): void {
    this.#byPseudo.clear();
  }
}
