/**
 * `deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR] [--max-bytes N]
 * [--no-bell]`:
 * the command line, then the interactive client (app.ts) on a chat screen
 * when stdin and stdout are a terminal, plain lines otherwise (screen.ts).
 */

import { parseArgs } from "node:util";
import * as path from "node:path";
import { errorMessage } from "../../lib/errors.ts";
import { MAX_STRING_BYTES } from "../requests.ts";
import { ChatCli } from "./app.ts";
import { downloadsProblem } from "./downloads.ts";
import { SeenNames } from "./names.ts";
import { PlainScreen, type Screen, TtyScreen } from "./screen.ts";
import { checkPseudo } from "../../protocol/pseudonym.ts";
import { HELP, invalidPseudoText, USAGE } from "./view.ts";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: as if unset
  }
}

/** Where the user typed the command: `deno task` runs in the project folder but sets INIT_CWD. */
function userCwd(): string {
  return env("INIT_CWD") || Deno.cwd();
}

/** node:util's parse errors, without their advice about `--` (a pseudo never starts with "-"). */
function argError(e: unknown): string {
  const code = (e as { code?: string }).code;
  const option = /'(-[^' ]+)/.exec(errorMessage(e))?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) return `unknown option ${option}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    return `${option} needs a value (${option} VALUE)`;
  }
  return errorMessage(e);
}

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        share: { type: "string" },
        downloads: { type: "string" },
        "max-bytes": { type: "string" },
        "no-bell": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`${argError(e)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(`${USAGE}\n\n${HELP}`);
    return 0;
  }
  if (positionals.length < 1) {
    console.error(`missing the pseudo to log in as\n\n${USAGE}`);
    return 2;
  }
  if (positionals.length > 3) {
    const extra = positionals.slice(3).map((p) => JSON.stringify(p)).join(" ");
    console.error(
      `too many arguments: ${extra} after pseudo, host and port ` +
        `(a pseudo is one word)\n\n${USAGE}`,
    );
    return 2;
  }
  const [typed, host = "127.0.0.1", portText = "7777"] = positionals;
  // The server holds a name in NFC; the frames we send later must name us the same way.
  const pseudo = typed.normalize("NFC");
  // The server's own rule, checked here so the refusal can say what is wrong with the name.
  const name = checkPseudo(pseudo);
  if (!name.ok) {
    console.error(invalidPseudoText(pseudo, name.reason));
    return 2;
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    console.error(`invalid port ${JSON.stringify(portText)}\n${USAGE}`);
    return 2;
  }
  const maxText = values["max-bytes"] ?? String(MAX_STRING_BYTES);
  const maxBytes = Number(maxText);
  if (!/^\d+$/.test(maxText) || maxBytes < 1 || maxBytes > MAX_STRING_BYTES) {
    console.error(`--max-bytes: ${JSON.stringify(maxText)} is not from 1 to ${MAX_STRING_BYTES}`);
    return 2;
  }
  const cwd = userCwd();
  let shareDir: string | null = null;
  if (values.share !== undefined) {
    shareDir = path.resolve(cwd, values.share);
    try {
      if (!(await Deno.stat(shareDir)).isDirectory) throw new Error("not a directory");
    } catch (e) {
      console.error(`--share: cannot share ${shareDir}: ${errorMessage(e)}`);
      return 2;
    }
  }
  const downloadsDir = path.resolve(cwd, values.downloads ?? "downloads");
  const cannotSave = await downloadsProblem(downloadsDir);
  if (cannotSave) {
    console.error(`--downloads: ${cannotSave}: give a folder you can write to (--downloads DIR)`);
    return 2;
  }
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const names = new SeenNames(pseudo);
  const screen: Screen = interactive
    ? new TtyScreen({
      colour: !env("NO_COLOR"),
      bell: !values["no-bell"],
      complete: (line) => names.complete(line),
    })
    : new PlainScreen(Deno.stdin.readable, (text) => console.log(text));
  const cli = new ChatCli({
    pseudo,
    host,
    port,
    shareDir,
    downloadsDir,
    maxBytes,
    screen,
    names,
  });
  const code = await cli.login();
  if (code !== 0) return code;
  return await cli.run();
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
