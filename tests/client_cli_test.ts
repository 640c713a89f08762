/** The interactive CLI, run as real processes against an in-test server. */
import assert from "node:assert/strict";
import * as path from "node:path";
import { startServer } from "../src/server/server.ts";
import { randomBytes } from "./helpers/client_fixtures.ts";

const CLI = new URL("../src/client/cli/main.ts", import.meta.url).pathname;
const enc = new TextEncoder();

/** One `cli.ts` process: stdin to type into, stdout lines to wait for. */
class Cli {
  readonly name: string;
  #proc: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #lines: string[] = [];
  #seen = 0;
  #wake: (() => void) | null = null;
  #stdout: Promise<void>;
  readonly stderr: Promise<string>;
  #status: Promise<Deno.CommandStatus> | null = null;

  constructor(name: string, args: string[], cwd: string) {
    this.name = name;
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-write", CLI, ...args],
      cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#proc = proc;
    this.#stdin = proc.stdin.getWriter();
    this.#stdout = (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        const parts = buf.split("\n");
        buf = parts.pop()!;
        this.#lines.push(...parts);
        this.#wake?.();
      }
      if (buf) this.#lines.push(buf);
      this.#wake?.();
    })();
    this.stderr = new Response(proc.stderr).text();
  }

  async type(line: string): Promise<void> {
    await this.#stdin.write(enc.encode(line + "\n"));
  }

  /** Waits for a stdout line (after the last one matched) that matches `re`. */
  async waitFor(re: RegExp, ms = 8000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    while (true) {
      for (let i = this.#seen; i < this.#lines.length; i++) {
        const m = re.exec(this.#lines[i]);
        if (m) {
          this.#seen = i + 1;
          return m;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.name}: no line matching ${re} within ${ms} ms; stdout so far:\n` +
            this.#lines.join("\n"),
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
  }

  get output(): string {
    return this.#lines.join("\n");
  }

  /** Closes stdin (EOF) and waits for the exit status. */
  async end(): Promise<Deno.CommandStatus> {
    await this.#stdin.close().catch(() => {});
    return await this.exited();
  }

  async exited(): Promise<Deno.CommandStatus> {
    this.#status ??= this.#proc.status;
    const status = await this.#status;
    await this.#stdout;
    await this.stderr;
    return status;
  }

  /** Last-resort cleanup: kill if still running, release every stream. */
  async dispose(): Promise<void> {
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.#stdin.close().catch(() => {});
    await this.exited();
  }
}

async function withCliWorld(
  fn: (ctx: {
    port: number;
    dir: string;
    spawn(name: string, ...extra: string[]): Cli;
    closeServer(): Promise<void>;
  }) => Promise<void>,
): Promise<void> {
  const server = await startServer({ host: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "chatos-cli-" });
  const procs: Cli[] = [];
  try {
    await fn({
      port: server.port,
      dir,
      spawn(name, ...extra) {
        const cli = new Cli(name, [name, "127.0.0.1", String(server.port), ...extra], dir);
        procs.push(cli);
        return cli;
      },
      closeServer: () => server.close(),
    });
  } finally {
    await Promise.all(procs.map((p) => p.dispose()));
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli: two users chat; errors print by name; stdin EOF exits 0", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice");
    await alice.waitFor(/^connected to 127\.0\.0\.1:\d+ as alice/);
    const bob = spawn("bob");
    await bob.waitFor(/^connected to .* as bob/);

    await alice.type("hello everyone");
    await bob.waitFor(/^\[alice\] hello everyone$/);
    await bob.type("@alice psst, just you");
    await alice.waitFor(/^\[bob → you\] psst, just you$/);
    await alice.type("@zed hi");
    await alice.waitFor(/^zed is not connected$/);

    // The same pseudo again: refused with a reason and a non-zero exit.
    const again = spawn("alice");
    const status = await again.exited();
    assert.equal(status.code, 1);
    assert.match(await again.stderr, /"alice" is already taken/);

    assert.equal((await alice.end()).code, 0);
    assert.equal((await bob.end()).code, 0);
    assert.doesNotMatch(alice.output, /^\[alice\]/m, "an SMA is not echoed to its sender");
  });
});

Deno.test("cli: /bob file with y fetches it byte-identical; n declines", async () => {
  await withCliWorld(async ({ dir, spawn }) => {
    const share = path.join(dir, "bob-share");
    const downloads = path.join(dir, "alice-downloads");
    await Deno.mkdir(share);
    const data = randomBytes(3 * 1024 * 1024 + 7);
    await Deno.writeFile(path.join(share, "photo.jpg"), data);

    const alice = spawn("alice", "--downloads", downloads);
    const bob = spawn("bob", "--share", share);
    await alice.waitFor(/^connected/);
    await bob.waitFor(/^connected/);

    await alice.type("/bob photo.jpg");
    await alice.waitFor(/^asked bob for a private connection/);
    await bob.waitFor(/^alice asks for a private connection: answer y or n$/);
    await bob.type("y");
    const [, saved] = await alice.waitFor(/^saved photo\.jpg from bob to (.+) \(\d+ bytes\)$/);
    assert.equal(saved, path.join(downloads, "photo.jpg"));
    await bob.waitFor(/^sent photo\.jpg to alice \(3145735 bytes\)$/);
    const got = await Deno.readFile(saved);
    assert.equal(got.length, data.length);
    assert.ok(got.every((v, i) => v === data[i]), "same bytes");

    await alice.type("/bob ../etc/passwd");
    await bob.waitFor(/^alice asks for a private connection/);
    await bob.type("/accept alice");
    await alice.waitFor(/^bob could not send \.\.\/etc\/passwd: 403 Forbidden$/);

    await alice.type("/bob photo.jpg");
    await bob.waitFor(/^alice asks for a private connection/);
    await bob.type("n");
    await alice.waitFor(/^bob declined the private connection/);
    await bob.waitFor(/^declined alice's private connection$/);

    assert.equal((await alice.end()).code, 0);
    assert.equal((await bob.end()).code, 0);
  });
});

Deno.test("cli: the server closing is reported and exits non-zero", async () => {
  await withCliWorld(async ({ spawn, closeServer }) => {
    const alice = spawn("alice");
    await alice.waitFor(/^connected/);
    await closeServer();
    await alice.waitFor(/^disconnected: /);
    assert.equal((await alice.exited()).code, 1);
  });
});
