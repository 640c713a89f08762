/**
 * Tab completion for the chat screen: the names this user has seen (senders,
 * recipients, askers) and the commands. Only valid pseudonyms are kept, so a
 * completion can never put a peer's control characters into the input line.
 */
import { checkPseudo } from "../../protocol/pseudonym.ts";

const COMMANDS = ["/msg", "/get", "/accept", "/decline", "/say", "/help", "/quit"];
/** Most recently seen first; more than this and the oldest are forgotten. */
const MAX_NAMES = 500;

export class SeenNames {
  #names: string[] = [];
  #me: string;

  constructor(me: string) {
    this.#me = me;
  }

  /** Remembers `name` (not our own, not an invalid one) as the most recent. */
  add(name: string): void {
    if (name === this.#me || !checkPseudo(name).ok) return;
    const i = this.#names.indexOf(name);
    if (i >= 0) this.#names.splice(i, 1);
    this.#names.unshift(name);
    this.#names.length = Math.min(this.#names.length, MAX_NAMES);
  }

  /**
   * readline's completer: for the line up to the cursor, the candidates for
   * its last word and that word. `@bo` → `@bob `, `/ms` → `/msg `, `/bo` →
   * `/bob ` (a file request), `/msg b` → `bob `; names match case-blind, most
   * recent first.
   */
  complete(line: string): [string[], string] {
    const word = /\S*$/.exec(line)![0];
    const first = word.length === line.length;
    const sigil = word.startsWith("@") ? "@" : first && word.startsWith("/") ? "/" : "";
    const typed = word.slice(sigil.length).toLowerCase();
    const names = this.#names.filter((n) => n.toLowerCase().startsWith(typed));
    const hits = [
      ...(sigil === "/" ? COMMANDS.filter((c) => c.startsWith(word.toLowerCase())) : []),
      ...names.map((n) => sigil + n),
    ];
    return [hits.length === 1 ? [`${hits[0]} `] : hits, word];
  }
}
