/**
 * What a typed line means: a discriminated union, decided here once so the
 * app only acts on it. Parsing is pure: it sees the line and whether a
 * private-connection request is waiting for an answer.
 */

export type Command =
  | { kind: "nothing" }
  /** Text to everyone (SMA). */
  | { kind: "say"; text: string }
  /** Text to one user (SPM). */
  | { kind: "tell"; to: string; text: string }
  /** Ask `from` for a private connection and fetch `path` over it. */
  | { kind: "get"; from: string; path: string }
  /** Answer the oldest pending request (from `from`, if given). */
  | { kind: "answer"; accept: boolean; from?: string }
  | { kind: "help" }
  | { kind: "quit" }
  /** Not a command that can run: show `message`. */
  | { kind: "invalid"; message: string };

export interface ParseContext {
  /** Requests of others waiting for y/n. */
  pending: number;
}

const YES = ["y", "yes"];
const NO = ["n", "no"];

export function parseCommand(raw: string, ctx: ParseContext): Command {
  const line = raw.trim();
  if (line === "") return { kind: "nothing" };
  const lower = line.toLowerCase();
  if (ctx.pending > 0 && (YES.includes(lower) || NO.includes(lower))) {
    return { kind: "answer", accept: YES.includes(lower) };
  }
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  if (line.startsWith("@")) {
    const m = /^@(\S+)\s+(.+)$/s.exec(line);
    if (!m) return { kind: "invalid", message: "usage: @name message" };
    return { kind: "tell", to: m[1], text: m[2] };
  }
  if (!line.startsWith("/")) return { kind: "say", text: line };
  const [cmd, ...rest] = line.slice(1).split(/\s+/);
  const arg = line.slice(1 + cmd.length).trim();
  switch (cmd) {
    case "quit":
    case "exit":
      return { kind: "quit" };
    case "help":
      return { kind: "help" };
    case "accept":
    case "decline":
      return { kind: "answer", accept: cmd === "accept", from: rest[0] };
    case "":
      return { kind: "invalid", message: "type /help for commands" };
    default:
      if (arg === "") {
        return { kind: "invalid", message: `usage: /${cmd} <path>  (fetch a file from ${cmd})` };
      }
      return { kind: "get", from: cmd, path: arg };
  }
}
