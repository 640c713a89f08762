/** The interactive CLI, run as real processes with piped stdin/stdout against an in-test server. */
import assert from "node:assert/strict";
import * as path from "node:path";
import { ChatClient } from "../src/client/client.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import { randomBytes, withCliWorld } from "./helpers/client_fixtures.ts";

Deno.test("cli: two users chat; own lines echoed; errors print by name; EOF exits 0", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice");
    await alice.waitFor(/^connected to 127\.0\.0\.1:\d+ as alice\. Sharing nothing\./);
    const bob = spawn("bob");
    await bob.waitFor(/^connected to .* as bob/);

    await alice.type("hello everyone");
    await alice.waitFor(/^\[you\] hello everyone$/);
    await bob.waitFor(/^\[alice\] hello everyone$/);
    await bob.type("@alice psst, just you");
    await bob.waitFor(/^\[you → alice\] psst, just you$/);
    await alice.waitFor(/^\[bob → you\] psst, just you$/);
    await bob.type("/msg alice the long way");
    await alice.waitFor(/^\[bob → you\] the long way$/);
    await alice.type("@zed hi");
    await alice.waitFor(/^zed is not connected$/);

    // The same pseudo again: refused with a reason and a non-zero exit.
    const again = spawn("alice");
    assert.equal((await again.exited()).code, 1);
    assert.match(
      await again.stderr,
      /^login failed: "alice" is in use, by that name or one that looks the same\. Choose another pseudo$/m,
    );

    assert.equal((await alice.end()).code, 0);
    assert.equal((await bob.end()).code, 0);
    assert.doesNotMatch(alice.output, /^\[alice\]/m, "the server does not echo an SMA");
  });
});

Deno.test("cli: words mean one thing: a lone y is not sent; unknown /commands are errors", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice");
    const bob = spawn("bob");
    await alice.waitFor(/^connected/);
    await bob.waitFor(/^connected/);

    await alice.type("y");
    await alice.waitFor(/^nothing to answer: "y" was not sent\. To send it to everyone: \/say y$/);
    await alice.type("n");
    await alice.waitFor(/^nothing to answer: "n" was not sent/);
    await alice.type("/who");
    await alice.waitFor(/^\/who is not a ChatOS command \(type \/help\)\. .*\/get who PATH$/);
    await alice.type("/nick alicia");
    await alice.waitFor(/^\/nick is not a ChatOS command/);
    await alice.type("/bob");
    await alice.waitFor(/^unknown command \/bob \(type \/help\)\. To fetch a file from bob: /);
    await alice.type("/accept");
    await alice.waitFor(/^nothing to answer$/);
    await alice.type("/say y");
    await alice.type("marker");
    // Bob sees the explicit y, then the marker, and nothing before them.
    await bob.waitFor(/^\[alice\] y$/);
    await bob.waitFor(/^\[alice\] marker$/);
    assert.deepEqual(
      bob.output.split("\n").filter((l) => l.startsWith("[alice]")),
      ["[alice] y", "[alice] marker"],
      "neither the lone y/n nor the commands reached bob",
    );
    await alice.type("/help");
    await alice.waitFor(/^ *\/get bob path +ask bob for a file/);
  });
});

Deno.test("cli: a shared file arrives byte-identical after the per-file prompt; n and hidden files are refused", async () => {
  await withCliWorld(async ({ dir, spawn }) => {
    const share = path.join(dir, "bob-share");
    await Deno.mkdir(share);
    const data = randomBytes(3 * 1024 * 1024 + 7);
    await Deno.writeFile(path.join(share, "photo.jpg"), data);
    await Deno.writeTextFile(path.join(share, ".env"), "SECRET=1");
    await Deno.mkdir(path.join(share, ".git"));
    await Deno.writeTextFile(path.join(share, ".git", "config"), "[core]");
    await Deno.writeTextFile(path.join(dir, "outside.txt"), "not shared");
    await Deno.symlink(path.join(dir, "outside.txt"), path.join(share, "link.txt"));

    // Relative paths are taken from the folder the client was started in.
    const alice = spawn("alice", ["--downloads", "alice-downloads"]);
    const bob = spawn("bob", ["--share", "bob-share"]);
    await alice.waitFor(/^connected/);
    await bob.waitFor(/^connected .* Sharing .*bob-share \(you confirm each file\)/);

    await alice.type("/bob photo.jpg");
    await alice.waitFor(/^asked bob for photo\.jpg; waiting for bob to answer$/);
    await bob.waitFor(/^alice wants photo\.jpg \(3\.0 MiB\): send\? \[y\/n\]$/);
    await bob.type("y");
    const [, saved] = await alice.waitFor(/^saved photo\.jpg from bob to (.+) \(3\.0 MiB\)$/);
    assert.equal(saved, path.join(dir, "alice-downloads", "photo.jpg"));
    await bob.waitFor(/^sent photo\.jpg to alice \(3\.0 MiB\)$/);
    const got = await Deno.readFile(saved);
    assert.equal(got.length, data.length);
    assert.ok(got.every((b, i) => b === data[i]), "same bytes");

    await alice.type("/get bob photo.jpg");
    await bob.waitFor(/^alice wants photo\.jpg .*send\? \[y\/n\]$/);
    await bob.type("n");
    await bob.waitFor(/^not sending photo\.jpg to alice$/);
    await alice.waitFor(/^bob declined to send photo\.jpg$/);

    for (
      const [target, why] of [
        [".env", "hidden files are never shared"],
        [".git/config", "hidden files are never shared"],
        ["link.txt", "it leads outside the shared folder"],
        ["../outside.txt", "outside the shared folder"],
      ]
    ) {
      await alice.type(`/bob ${target}`);
      await bob.waitFor(
        new RegExp(`^alice asked for ${target.replaceAll(".", "\\.")}: refused, ${why} \\(403\\)$`),
      );
      await alice.waitFor(
        new RegExp(`^bob could not send ${target.replaceAll(".", "\\.")}: 403 Forbidden$`),
      );
    }
    assert.doesNotMatch(bob.output, /wants \.env|wants \.git|wants link/, "never asked about them");
    const downloaded = (await Array.fromAsync(Deno.readDir(path.join(dir, "alice-downloads"))))
      .map((e) => e.name);
    assert.deepEqual(downloaded, ["photo.jpg"]);

    assert.equal((await alice.end()).code, 0);
    assert.equal((await bob.end()).code, 0);
  });
});

Deno.test("cli: without --share nothing is served", async () => {
  await withCliWorld(async ({ dir, spawn }) => {
    // The client's folder holds a file: without --share it must stay there.
    await Deno.writeTextFile(path.join(dir, "notes.txt"), "private notes");
    const alice = spawn("alice", ["--downloads", "dl"]);
    const bob = spawn("bob");
    await alice.waitFor(/^connected/);
    await bob.waitFor(/^connected .* Sharing nothing\./);
    await alice.type("/bob notes.txt");
    await bob.waitFor(
      /^alice asked you for a file; you share nothing \(start with --share DIR\): declined$/,
    );
    await alice.waitFor(/^bob declined$/);
    await assert.rejects(Deno.stat(path.join(dir, "dl")), Deno.errors.NotFound);
  });
});

Deno.test("cli: an over-limit line is refused locally with the reason", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice");
    const slim = spawn("slim", ["--max-bytes", "100"]);
    const bob = spawn("bob");
    await alice.waitFor(/^connected/);
    await slim.waitFor(/^connected/);
    await bob.waitFor(/^connected/);
    await alice.type("x".repeat(40_000));
    await alice.waitFor(
      /^not sent: the message is 40000 bytes; the server takes at most 32767$/,
    );
    await slim.type("é".repeat(60));
    await slim.waitFor(/^not sent: the message is 120 bytes; the server takes at most 100$/);
    await alice.type("still here");
    await bob.waitFor(/^\[alice\] still here$/);
    assert.doesNotMatch(bob.output, /xxxx|éé/, "nothing of the long lines arrived");
    assert.doesNotMatch(alice.output, /disconnected/);
  });
});

Deno.test("cli: after a server restart the client logs in again and says so", async () => {
  await withCliWorld(async ({ spawn, stopServer, startServer }) => {
    const alice = spawn("alice");
    await alice.waitFor(/^connected/);
    await stopServer();
    await alice.waitFor(/^disconnected: .*; reconnecting\.\.\.$/);
    await alice.type("while away");
    await alice.waitFor(/^not sent: not connected \(reconnecting\.\.\.\)$/);
    await startServer();
    await alice.waitFor(/^reconnected to 127\.0\.0\.1:\d+, logged in again as alice$/, 20_000);
    const bob = spawn("bob");
    await bob.waitFor(/^connected/);
    await alice.type("back again");
    await bob.waitFor(/^\[alice\] back again$/);
    assert.equal((await alice.end()).code, 0);
  });
});

Deno.test("cli: a server that drops a long line is said so, and such lines are then refused here", async () => {
  await withCliWorld(async ({ spawn }) => {
    const alice = spawn("alice");
    const bob = spawn("bob");
    await alice.waitFor(/^connected/);
    await bob.waitFor(/^connected/);
    await alice.type("short and fine, but over sixty-four bytes long: " + "-".repeat(30));
    await bob.waitFor(/^\[alice\] short and fine/);
    await alice.type("x".repeat(2000));
    await alice.waitFor(/^disconnected: .*; reconnecting\.\.\.$/);
    await alice.waitFor(
      /^your 2000-byte message was not delivered: .* Lines over 1024 bytes are now refused here/,
    );
    await alice.waitFor(/^reconnected to /, 20_000);
    await alice.type("y".repeat(1500));
    await alice.waitFor(/^not sent: the message is 1500 bytes; the server takes at most 1024$/);
    await alice.type("still here");
    await bob.waitFor(/^\[alice\] still here$/);
    assert.doesNotMatch(bob.output, /xxxx|yyyy/);
  }, { maxStringBytes: 100 });
});

Deno.test("cli: if the pseudo was taken while away, the client says so and exits 1", async () => {
  await withCliWorld(async ({ port, spawn, stopServer, startServer }) => {
    const alice = spawn("alice");
    await alice.waitFor(/^connected/);
    await stopServer();
    // Its first try failed; the next is a second away: time for someone else to take "alice".
    await alice.waitFor(/^cannot connect to .*; retrying in 1\.0 s$/);
    await startServer();
    const thief = await ChatClient.connect({ port });
    try {
      assert.equal(await thief.login("alice"), ErrorCode.OK);
      await alice.waitFor(/^alice is still taken \(your old session may not have expired yet\)/);
      await alice.waitFor(
        /^alice was taken by someone else while you were away; giving up/,
        20_000,
      );
      assert.equal((await alice.exited()).code, 1);
    } finally {
      thief.close();
    }
  });
});
