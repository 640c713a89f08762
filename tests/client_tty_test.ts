/**
 * The CLI on a pseudo-terminal (`script`), as a user sees it: the chat
 * screen, and what a peer's text can and cannot do to the terminal.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { randomBytes, withCliWorld } from "./helpers/client_fixtures.ts";

/** Byte sequences a peer would use to drive the terminal; the client never emits them itself. */
const HOSTILE = {
  clear: "\x1b[2J",
  title: "\x1b]0;pwned\x07",
  csi8: "\u009b2J",
  bidi: "\u202e",
  cr: "\rinnocent",
};

Deno.test("tty: hostile text is shown, never interpreted; the screen has prompt, echo, timestamps", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice", [], { pty: true });
    await alice.waitFor(/^connected to .* as alice/);
    assert.match(alice.raw, /> /, "a prompt");
    const mallory = spawn("mallory");
    await mallory.waitFor(/^connected/);

    await mallory.type(`hi${HOSTILE.clear}${HOSTILE.title}${HOSTILE.csi8}${HOSTILE.bidi}gnp.exe`);
    await mallory.type(`@alice x${HOSTILE.cr}\x1b[2K[bob → you] send me your password`);
    await alice.waitFor(/^\[mallory\] hi\^\[\[2J\^\[\]0;pwned\^G\\u\{9b\}2J\\u\{202e\}gnp\.exe$/);
    await alice.waitFor(
      /^\[mallory → you\] x\^Minnocent\^\[\[2K\[bob → you\] send me your password$/,
    );
    for (const [what, seq] of Object.entries(HOSTILE)) {
      assert.ok(!alice.raw.includes(seq), `${what} reached the terminal raw`);
    }

    await alice.type("hello from a terminal");
    await alice.waitFor(/^\[you\] hello from a terminal$/);
    await mallory.waitFor(/^\[alice\] hello from a terminal$/);
    assert.match(alice.raw, /\d\d:\d\d \[you\] hello from a terminal/, "timestamped");
    const colour = new RegExp(String.fromCharCode(27) + "\\[3\\dm");
    assert.ok(!colour.test(alice.raw), "NO_COLOR: no colours");
    assert.equal((await alice.end()).code, 0);
  });
});

Deno.test("tty: colours without NO_COLOR; a lone y is not sent; pastes arrive whole or are refused", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice", [], { pty: true, env: { TERM: "xterm" } });
    const bob = spawn("bob");
    await alice.waitFor(/^connected/);
    await bob.waitFor(/^connected/);

    await alice.type("y");
    await alice.waitFor(/^nothing to answer: "y" was not sent/);

    // A paste longer than a terminal line (and than the 4095-byte line of a cooked tty).
    const long = Array.from({ length: 5000 }, (_, i) => "abcdefghij"[i % 10]).join("");
    await alice.write(long + "\r");
    await bob.waitFor(new RegExp(`^\\[alice\\] ${long}$`));
    await alice.write("z".repeat(40_000) + "\r");
    await alice.waitFor(/^not sent: the message is 40000 bytes; the server takes at most 32767$/);

    await alice.type("done");
    await alice.waitFor(/^\[you\] done$/);
    await bob.waitFor(/^\[alice\] done$/);
    assert.deepEqual(
      bob.output.split("\n").filter((l) => l.startsWith("[alice]")).map((l) => l.length),
      [8 + 5000, 8 + 4],
      "only the 5000-character paste and 'done' reached bob",
    );
    assert.ok(alice.raw.includes("\x1b[36m[you] done\x1b[0m"), "own lines in colour");
    assert.equal((await alice.end()).code, 0);
  });
});

Deno.test("tty: the per-file prompt, answered y on a terminal, sends the file byte-identical", async () => {
  await withCliWorld(async ({ dir, spawn }) => {
    await Deno.mkdir(path.join(dir, "share"));
    const data = randomBytes(200_000);
    await Deno.writeFile(path.join(dir, "share", "notes.bin"), data);
    const bob = spawn("bob", ["--share", "share"], { pty: true });
    const alice = spawn("alice", ["--downloads", "dl"]);
    await bob.waitFor(/^connected/);
    await alice.waitFor(/^connected/);
    await alice.type("/bob notes.bin");
    await bob.waitFor(/^alice wants notes\.bin \(195\.3 KiB\): send\? \[y\/n\]$/);
    await bob.type("y");
    await alice.waitFor(/^saved notes\.bin from bob to .* \(195\.3 KiB\)$/);
    const got = await Deno.readFile(path.join(dir, "dl", "notes.bin"));
    assert.equal(got.length, data.length);
    assert.ok(got.every((b, i) => b === data[i]), "same bytes");
    assert.equal((await bob.end()).code, 0);
  });
});

Deno.test("tty: Tab completes a name seen; a private message rings the bell, not with --no-bell", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice", [], { pty: true });
    const quiet = spawn("quiet", ["--no-bell"], { pty: true });
    const bob = spawn("bob");
    for (const c of [alice, quiet, bob]) await c.waitFor(/^connected/);
    await bob.type("hello");
    await alice.waitFor(/^\[bob\] hello$/);

    await alice.write("@bo\t");
    await alice.waitForRaw(/> @bob $/);
    await alice.type("psst");
    await bob.waitFor(/^\[alice → you\] psst$/);

    await bob.type("@alice ding");
    await alice.waitFor(/^\[bob → you\] ding$/);
    // deno-lint-ignore no-control-regex -- the bell (BEL, 0x07) is what is asserted
    assert.match(alice.raw, /\[bob → you\] ding\r?\n\x07/, "the bell rings with the message");
    await bob.type("@quiet ding");
    await quiet.waitFor(/^\[bob → you\] ding$/);
    assert.ok(!quiet.raw.includes("\x07"), "--no-bell: no bell");
    assert.ok(
      // deno-lint-ignore no-control-regex -- the bell that came with the message
      !alice.raw.replace(/ding\r?\n\x07/, "").includes("\x07"),
      "only for the message to alice",
    );
  });
});
