/**
 * What the client says when a user gets something wrong, or meets something
 * that is not a ChatOS server: what happened and what to do, in words; never
 * a function name, a stack, a frame or a link password.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { ChatClient } from "../src/client/client.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import { CliProcess, withCliWorld } from "./helpers/client_fixtures.ts";
import { freePort } from "../src/ops/processes.ts";

/** What a user must never be shown. */
const INTERNALS = /next\(\)|answer\(\)|nextError|\bat .*\.ts:\d+|opcode|password|os error 32/;

const RULES =
  'A pseudo is 1 to 32 letters, digits or combining marks of any script, with ".", "-" or "_" ' +
  "only between them (no spaces). Names that differ only in case or by lookalike characters " +
  '("bob", "Bob", "b0b", fullwidth or Cyrillic letters) are one name.';

/** Runs the client with `args` (no server needed), stdin closed; its exit code and both outputs. */
async function runClient(args: string[], cwd = Deno.cwd()) {
  const cli = new CliProcess("client", args, { cwd });
  await cli.end();
  const status = await cli.exited();
  return { code: status.code, stdout: cli.output, stderr: await cli.stderr };
}

/** A TCP server on a free port that treats each connection with `serve`; closed by the caller. */
function fakeServer(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const loop = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      serve(conn).catch(() => {});
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
      await loop.catch(() => {});
    },
  };
}

Deno.test("words: a peer that is not a ChatOS server is said so, with what to check", async () => {
  const http = fakeServer(async (conn) => {
    await conn.read(new Uint8Array(64));
    await conn.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
    conn.close();
  });
  const silent = fakeServer(() => Promise.resolve());
  try {
    const check = (port: number) =>
      `Is 127\\.0\\.0\\.1:${port} a ChatOS server\\? Check the host and port \\(deno task client NAME HOST PORT\\)`;
    const h = await runClient(["alice", "127.0.0.1", String(http.port)]);
    assert.equal(h.code, 1);
    assert.match(
      h.stderr,
      new RegExp(
        `^login failed: 127\\.0\\.0\\.1:${http.port} answered with something that is not ChatOS\\. ${
          check(http.port)
        }\\n$`,
      ),
    );
    const s = await runClient(["alice", "127.0.0.1", String(silent.port)]);
    assert.match(
      s.stderr,
      new RegExp(
        `^login failed: 127\\.0\\.0\\.1:${silent.port} accepted the connection but did not answer the login within 5 s\\. ${
          check(silent.port)
        }\\n$`,
      ),
    );
    const nobody = freePort();
    const n = await runClient(["alice", "127.0.0.1", String(nobody)]);
    assert.match(
      n.stderr,
      new RegExp(
        `^cannot connect to 127\\.0\\.0\\.1:${nobody}: Connection refused \\(os error 111\\)\\. Is a ChatOS server running there\\? Check the host and port`,
      ),
    );
    for (const r of [h, s, n]) assert.doesNotMatch(r.stderr, INTERNALS);
  } finally {
    await http.close();
    await silent.close();
  }
});

Deno.test("words: an invalid name is refused before it is sent, with the rule and the character at fault", async () => {
  const spaced = await runClient(["bob smith"]);
  assert.equal(spaced.code, 2);
  assert.equal(
    spaced.stderr,
    `"bob smith" is not a valid pseudonym: it contains a space. ${RULES}\n`,
  );
  const bang = await runClient(["bob!"]);
  assert.equal(
    bang.stderr,
    `"bob!" is not a valid pseudonym: it contains "!" (U+0021). ${RULES}\n`,
  );
  const dot = await runClient([".bob"]);
  assert.match(
    dot.stderr,
    /^"\.bob" is not a valid pseudonym: it starts or ends with '\.', '-' or '_'\. A pseudo is/,
  );
  const help = await runClient(["--help"]);
  assert.equal(help.code, 0);
  assert.match(
    help.stdout,
    /pseudo +the name others see you as: 1 to 32 letters, digits or combining marks/,
  );
  assert.match(
    help.stdout,
    /names that differ only in case or lookalike letters \(bob, Bob, b0b\) are one/,
  );
});

Deno.test("words: a lookalike of a name in use is told which name it reads as", async () => {
  await withCliWorld(async ({ port, spawn }) => {
    const held: ChatClient[] = [];
    try {
      for (const name of ["bob", "alice"]) {
        const c = await ChatClient.connect({ port });
        held.push(c);
        assert.equal(await c.login(name), ErrorCode.OK);
      }
      const said = async (name: string) => {
        const cli = spawn(name);
        assert.equal((await cli.exited()).code, 1, name);
        return await cli.stderr;
      };
      const lookalike = (typed: string, as: string) =>
        `login failed: "${typed}" reads the same as "${as}" (case and lookalike letters do not ` +
        `make a new name), and someone holds that name. Choose another pseudo\n`;
      assert.equal(await said("b0b"), lookalike("b0b", "bob"));
      assert.equal(await said("ｂob"), lookalike("ｂob", "bob"));
      assert.equal(await said("аlice"), lookalike("аlice", "alice")); // Cyrillic а
      assert.equal(
        await said("bob"),
        'login failed: "bob" is in use, by that name or one that looks the same. Choose another pseudo\n',
      );
    } finally {
      for (const c of held) c.close();
    }
  });
});

Deno.test("words: wrong arguments say what was wrong", async () => {
  const extra = await runClient(["alice", "127.0.0.1", "7777", "hello", "there"]);
  assert.equal(extra.code, 2);
  assert.match(
    extra.stderr,
    /^too many arguments: "hello" "there" after pseudo, host and port \(a pseudo is one word\)\n\nusage: /,
  );
  const none = await runClient([]);
  assert.match(none.stderr, /^missing the pseudo to log in as\n\nusage: /);
  const unknown = await runClient(["alice", "--colour"]);
  assert.match(unknown.stderr, /^unknown option --colour\n\nusage: /);
  const bare = await runClient(["alice", "--share"]);
  assert.match(bare.stderr, /^--share needs a value \(--share VALUE\)\n\nusage: /);
  for (const r of [extra, none, unknown, bare]) {
    assert.doesNotMatch(r.stderr, /Did you forget|-- "/);
  }
});

Deno.test("words: --downloads is checked at start: a file, or a folder that cannot be written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chatos-words-" });
  try {
    await Deno.writeTextFile(path.join(dir, "notes.txt"), "x");
    const file = await runClient(["alice", "--downloads", "notes.txt"], dir);
    assert.equal(file.code, 2);
    assert.equal(
      file.stderr,
      `--downloads: ${dir}/notes.txt is a file, not a folder: give a folder you can write to (--downloads DIR)\n`,
    );
    const under = await runClient(["alice", "--downloads", "notes.txt/dl"], dir);
    assert.match(
      under.stderr,
      /^--downloads: .*\/notes\.txt\/dl cannot be made: .*\/notes\.txt is a file, not a folder: /,
    );
    // Deno writes under /proc only with --allow-all: its own error advised that flag.
    const sys = await runClient(["alice", "--downloads", "/proc/chatos-downloads"], dir);
    assert.equal(
      sys.stderr,
      "--downloads: /proc/chatos-downloads is in a system folder (/proc, /dev, /sys): give a folder you can write to (--downloads DIR)\n",
    );
    // A folder nobody may write to: read-only for others, immutable for root (if allowed here).
    const locked = path.join(dir, "locked");
    await Deno.mkdir(locked, { mode: 0o555 });
    await new Deno.Command("chattr", { args: ["+i", locked], stderr: "null" }).output()
      .catch(() => {});
    let ro = { stderr: "" };
    try {
      const writable = await Deno.writeTextFile(path.join(locked, "probe"), "").then(
        () => true,
        () => false,
      );
      if (!writable) {
        ro = await runClient(["alice", "--downloads", "locked/dl"], dir);
        assert.equal(
          ro.stderr,
          `--downloads: ${locked}/dl cannot be made: ${locked} is not writable for you: give a folder you can write to (--downloads DIR)\n`,
        );
      } else console.warn("could not make a folder unwritable here: that case is not checked");
    } finally {
      await new Deno.Command("chattr", { args: ["-i", locked], stderr: "null" }).output()
        .catch(() => {});
    }
    assert.doesNotMatch(file.stderr + under.stderr + sys.stderr + ro.stderr, /allow-all|os error/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("words: a question from before a reconnect is cancelled, never answered into a dead link", async () => {
  await withCliWorld(async ({ dir, spawn, stopServer, startServer }) => {
    await Deno.mkdir(path.join(dir, "share"));
    await Deno.writeTextFile(path.join(dir, "share", "notes.txt"), "notes");
    const bob = spawn("bob", ["--share", "share"]);
    const alice = spawn("alice");
    await bob.waitFor(/^connected/);
    await alice.waitFor(/^connected/);
    await alice.type("/bob notes.txt");
    await bob.waitFor(/^alice wants notes\.txt \(5 B\): send\? \[y\/n\]$/);
    await stopServer();
    await bob.waitFor(/^disconnected: .*; reconnecting\.\.\.$/);
    await bob.waitFor(
      /^not sending notes\.txt to alice: the connection to the server dropped before you answered; alice can ask again$/,
    );
    await startServer();
    await bob.waitFor(/^reconnected to /, 20_000);
    await bob.type("y");
    await bob.waitFor(/^nothing to answer: "y" was not sent\. To send it to everyone: \/say y$/);
    assert.doesNotMatch(bob.output, INTERNALS);
    assert.doesNotMatch(bob.output, /Broken pipe|sent notes\.txt/);
  });
});

Deno.test("words: the client imports nothing of the server's or presence's (it checks names with the protocol's rule)", async () => {
  const root = new URL("../src/client/", import.meta.url).pathname;
  const files = [root, `${root}cli/`].flatMap((d) =>
    [...Deno.readDirSync(d)].filter((e) => e.name.endsWith(".ts")).map((e) => d + e.name)
  );
  assert.ok(files.length > 10);
  for (const f of files) {
    const imports = [...(await Deno.readTextFile(f)).matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
    const resolved = imports.map((i) => new URL(i, `file://${f}`).pathname);
    assert.deepEqual(resolved.filter((p) => /\/src\/(server|presence)\//.test(p)), [], f);
  }
});
