/** Pure parts of the CLI: what a typed line means, and how others' text is shown. */
import assert from "node:assert/strict";
import { visible } from "../src/lib/visible.ts";
import { parseCommand } from "../src/client/cli/commands.ts";
import { eventLine, size } from "../src/client/cli/view.ts";
import { SeenNames } from "../src/client/cli/names.ts";

Deno.test("visible: controls, escapes, C1 and bidi controls are spelled out, text kept", () => {
  const cases: [string, string][] = [
    ["plain text, émoji 🎉", "plain text, émoji 🎉"],
    ["\x1b[2J", "^[[2J"],
    ["a\rb\nc\td\x00e\x7f", "a^Mb^Jc^Id^@e^?"],
    ["\x1b]0;title\x07", "^[]0;title^G"],
    ["\u009b31m", "\\u{9b}31m"],
    ["abc\u202eexe.txt", "abc\\u{202e}exe.txt"],
    [
      "\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
      "\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c}",
    ],
    ["line\u2028sep", "line\\u{2028}sep"],
  ];
  for (const [input, shown] of cases) assert.equal(visible(input), shown, JSON.stringify(input));
  // Whatever comes in, nothing a terminal acts on comes out.
  for (let c = 0; c < 0x3000; c++) {
    const out = visible(`x${String.fromCharCode(c)}y`);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(out, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/, `U+${c}`);
  }
});

Deno.test("view: names and texts of others go through visible()", () => {
  const line = eventLine({ kind: "private", from: "ev\x1bil", to: "me", text: "\x1b[2Jx" }, "me");
  assert.equal(line?.text, "[ev^[il → you] ^[[2Jx");
  assert.equal(line?.style, "private");
  const pub = eventLine({ kind: "public", from: "\u202eb", text: "\r" }, "me");
  assert.equal(pub?.text, "[\\u{202e}b] ^M");
});

Deno.test("commands: one meaning per line", () => {
  const none = { pending: 0 };
  const one = { pending: 1 };
  assert.deepEqual(parseCommand("hello", none), { kind: "say", text: "hello" });
  assert.deepEqual(parseCommand("  ", none), { kind: "nothing" });
  assert.deepEqual(parseCommand("@bob hi there", none), {
    kind: "tell",
    to: "bob",
    text: "hi there",
  });
  assert.deepEqual(parseCommand("/msg bob hi there", none), {
    kind: "tell",
    to: "bob",
    text: "hi there",
  });
  assert.deepEqual(parseCommand("/get bob a b.txt", none), {
    kind: "get",
    from: "bob",
    path: "a b.txt",
  });
  assert.deepEqual(parseCommand("/bob notes.txt", none), {
    kind: "get",
    from: "bob",
    path: "notes.txt",
  });
  assert.deepEqual(parseCommand("//etc", none), { kind: "say", text: "/etc" });
  assert.deepEqual(parseCommand("/say y", none), { kind: "say", text: "y" });
  assert.deepEqual(parseCommand("/quit", none), { kind: "quit" });
  assert.deepEqual(parseCommand("/help", none), { kind: "help" });
  // y/n answer only while something is pending.
  assert.deepEqual(parseCommand("y", one), { kind: "answer", accept: true });
  assert.deepEqual(parseCommand("No", one), { kind: "answer", accept: false });
  assert.deepEqual(parseCommand("/decline bob", none), {
    kind: "answer",
    accept: false,
    from: "bob",
  });
  for (const line of ["y", "yes", "n", "no"]) {
    assert.equal(parseCommand(line, none).kind, "invalid", line);
  }
  // Other chats' commands and bare unknown words are errors, never file requests.
  for (
    const line of ["/who", "/nick bob", "/list all", "/me waves", "/join #x", "/bob", "/", "@bob"]
  ) {
    assert.equal(parseCommand(line, none).kind, "invalid", line);
  }
  for (const line of ["/msg bob", "/get bob", "/say"]) {
    assert.match((parseCommand(line, none) as { message: string }).message, /^usage:/, line);
  }
});

Deno.test("view: a TCPAbort soon after asking reads as declined, a late one as expired; after an accept, the fetch speaks", () => {
  const ended = (afterMs: number, accepted = false) =>
    eventLine({ kind: "ask-ended", to: "bob", accepted, afterMs }, "me")?.text;
  assert.equal(ended(200), "bob declined");
  assert.equal(ended(60_000), "no answer from bob in 60 s: the request expired");
  assert.equal(ended(200, true), undefined, "the fetch's own line says what happened");
});

Deno.test("view: sizes count in 1024s and say so: KiB, MiB, GiB", () => {
  assert.equal(size(512), "512 B");
  assert.equal(size(1536), "1.5 KiB");
  assert.equal(size(1_000_000), "976.6 KiB");
  assert.equal(size(3 * 1024 * 1024), "3.0 MiB");
  assert.equal(size(5 * 1024 ** 3), "5.0 GiB");
});

Deno.test("names: Tab completes seen names after @, /msg or a file request, and commands; never an invalid name", () => {
  const names = new SeenNames("me");
  for (const n of ["bob", "bea", "carol", "me", "evil\x1b[2J"]) names.add(n);
  assert.deepEqual(names.complete("@ca"), [["@carol "], "@ca"]);
  assert.deepEqual(names.complete("/msg ca"), [["carol "], "ca"]);
  assert.deepEqual(names.complete("/ca"), [["/carol "], "/ca"], "a file request: /carol path");
  assert.deepEqual(names.complete("hi CA"), [["carol "], "CA"], "case-blind, anywhere");
  assert.deepEqual(names.complete("@b"), [["@bea", "@bob"], "@b"], "most recent first");
  assert.deepEqual(names.complete("/ms"), [["/msg "], "/ms"]);
  assert.deepEqual(names.complete("@m"), [[], "@m"], "not our own name");
  assert.deepEqual(
    names.complete("@ev"),
    [[], "@ev"],
    "a name with control characters is never kept",
  );
  names.add("bob");
  assert.deepEqual(names.complete("@b")[0], ["@bob", "@bea"], "seen again: first");
});
