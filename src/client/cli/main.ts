/**
 * `deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR]`:
 * the command line, then the interactive client (app.ts).
 *
 * A plain line goes to everyone (SMA), `@bob text` to bob (SPM), `/bob path`
 * asks bob for a private connection and fetches that file over it (HTTP/1.0,
 * see file_transfer.ts). When someone asks us, `y` / `n` (or `/accept name`,
 * `/decline name`) answers the oldest pending request.
 */

import { parseArgs } from "node:util";
import * as path from "node:path";
import { errorMessage } from "../../lib/errors.ts";
import { ChatCli } from "./app.ts";
import { HELP, USAGE } from "./view.ts";

/** Lines of a byte stream (UTF-8, "\n" or "\r\n"); the last line may lack its newline. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
    }
  }
  buf += decoder.decode();
  if (buf !== "") yield buf;
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
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(`${USAGE}\n\n${HELP}`);
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 3) {
    console.error(USAGE);
    return 2;
  }
  const [pseudo, host = "127.0.0.1", portText = "7777"] = positionals;
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    console.error(`invalid port ${JSON.stringify(portText)}\n${USAGE}`);
    return 2;
  }
  const shareDir = path.resolve(values.share ?? ".");
  try {
    if (!(await Deno.stat(shareDir)).isDirectory) throw new Error("not a directory");
  } catch (e) {
    console.error(`cannot share ${shareDir}: ${errorMessage(e)}`);
    return 2;
  }
  const cli = new ChatCli({
    pseudo,
    host,
    port,
    shareDir,
    downloadsDir: path.resolve(values.downloads ?? "downloads"),
  });
  const code = await cli.login();
  if (code !== 0) return code;
  return await cli.run(readLines(Deno.stdin.readable));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
