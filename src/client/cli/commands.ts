/**
 * What a typed line means: a discriminated union, decided here once so the
 * app only acts on it. Parsing is pure: it sees the line and how many
 * questions are waiting for a y/n.
 *
 * Words mean one thing: `y`/`n` answer only while something is pending (else
 * they are refused, not sent); a `/word` that is not a command is the
 * authors' file request `/bob path` only when a path follows, else an error
 * with a hint; names of commands other chats have (`/who`, `/nick`...) are
 * errors, never file requests.
 */

export type Command =
  | { kind: "nothing" }
  /** Text to everyone (SMA). */
  | { kind: "say"; text: string }
  /** Text to one user (SPM). */
  | { kind: "tell"; to: string; text: string }
  /** Ask `from` for a private connection and fetch `path` over it. */
  | { kind: "get"; from: string; path: string }
  /** Answer the oldest pending question (from `from`, if given). */
  | { kind: "answer"; accept: boolean; from?: string }
  | { kind: "help" }
  | { kind: "quit" }
  /** Not a command that can run: show `message`. */
  | { kind: "invalid"; message: string };

export interface ParseContext {
  /** Questions waiting for y/n. */
  pending: number;
}

const YES = ["y", "yes"];
const NO = ["n", "no"];

/** Commands of other chat programs that ChatOS has no equivalent for. */
const FOREIGN = new Set([
  "nick",
  "who",
  "whois",
  "list",
  "names",
  "join",
  "part",
  "leave",
  "me",
  "query",
  "away",
  "topic",
  "users",
  "invite",
  "kick",
]);

export function parseCommand(raw: string, ctx: ParseContext): Command {
  const line = raw.trim();
  if (line === "") return { kind: "nothing" };
  const lower = line.toLowerCase();
  if (YES.includes(lower) || NO.includes(lower)) {
    if (ctx.pending > 0) return { kind: "answer", accept: YES.includes(lower) };
    return {
      kind: "invalid",
      message: `nothing to answer: "${line}" was not sent. To send it to everyone: /say ${line}`,
    };
  }
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  if (line.startsWith("@")) {
    const m = /^@(\S+)\s+(.+)$/s.exec(line);
    if (!m) return { kind: "invalid", message: "usage: @name message" };
    return { kind: "tell", to: m[1], text: m[2] };
  }
  if (!line.startsWith("/")) return { kind: "say", text: line };
  const m = /^\/(\S*)\s*(.*)$/s.exec(line)!;
  const cmd = m[1];
  const arg = m[2];
  const [first = "", ...more] = arg.split(/\s+/).filter((w) => w !== "");
  const rest = arg.slice(first.length).trim();
  switch (cmd.toLowerCase()) {
    case "":
      return { kind: "invalid", message: "type /help for commands" };
    case "quit":
    case "exit":
      return { kind: "quit" };
    case "help":
      return { kind: "help" };
    case "say":
      return arg === "" ? { kind: "invalid", message: "usage: /say text" } : {
        kind: "say",
        text: arg,
      };
    case "msg":
      if (first === "" || rest === "") return { kind: "invalid", message: "usage: /msg name text" };
      return { kind: "tell", to: first, text: rest };
    case "get":
      if (first === "" || rest === "") return { kind: "invalid", message: "usage: /get name path" };
      return { kind: "get", from: first, path: rest };
    case "accept":
    case "decline":
      if (more.length > 0) return { kind: "invalid", message: `usage: /${cmd} [name]` };
      return { kind: "answer", accept: cmd.toLowerCase() === "accept", from: first || undefined };
  }
  if (FOREIGN.has(cmd.toLowerCase())) {
    return {
      kind: "invalid",
      message: `/${cmd} is not a ChatOS command (type /help). ` +
        `To fetch a file from a user named ${cmd}: /get ${cmd} PATH`,
    };
  }
  if (arg === "") {
    return {
      kind: "invalid",
      message: `unknown command /${cmd} (type /help). ` +
        `To fetch a file from ${cmd}: /${cmd} PATH or /get ${cmd} PATH`,
    };
  }
  return { kind: "get", from: cmd, path: arg };
}
