/**
 * Pseudonym policy (src/protocol/pseudonym.ts): which names are valid, and
 * that lookalikes of a name share one of its keys, so they cannot log in
 * while it is held.
 */
import assert from "node:assert/strict";
import {
  checkPseudo,
  MAX_MARKS_PER_BASE,
  pseudoKeys,
  type PseudoRefusal,
  skeleton,
} from "../src/protocol/pseudonym.ts";

function keysOf(name: string): string[] {
  const r = checkPseudo(name);
  assert.ok(r.ok, `${JSON.stringify(name)} refused: ${r.ok ? "" : r.reason}`);
  return r.keys;
}

function collide(x: string, y: string): boolean {
  const kx = keysOf(x);
  return keysOf(y).some((k) => kx.includes(k));
}

function refusal(name: string): PseudoRefusal | "accepted" {
  const r = checkPseudo(name);
  return r.ok ? "accepted" : r.reason;
}

Deno.test("lookalikes of alice all share a key with it", () => {
  const lookalikes = [
    "Alice",
    "ALICE",
    "aLiCe",
    "\u0430lice", // Cyrillic а
    "\u03b1lice", // Greek α
    "\uff41\uff4c\uff49\uff43\uff45", // fullwidth
    "\u{1d41a}\u{1d425}\u{1d422}\u{1d41c}\u{1d41e}", // mathematical bold
    "a\u217cice", // small roman numeral fifty
    "a\u01c0ice", // dental click
    "aIice", // capital I for l
    "a1ice",
  ];
  for (const name of lookalikes) {
    assert.ok(collide("alice", name), `${JSON.stringify(name)} should collide with alice`);
  }
  const upper = checkPseudo("ALICE");
  assert.ok(upper.ok);
  assert.equal(upper.canonical, "alice");
  assert.equal(upper.display, "ALICE");
});

Deno.test("capital lookalikes from other scripts collide with Latin capitals", () => {
  assert.ok(collide("KATE", "\u039a\u0391\u03a4\u0395")); // Greek ΚΑΤΕ
  assert.ok(collide("kate", "\u041a\u0410\u0422\u0415")); // Cyrillic КАТЕ
  assert.ok(collide("straße", "STRASSE"));
  assert.ok(collide("b0b", "bob"));
  assert.ok(collide("\u03c3\u03bf\u03c6\u03bf\u03c2", "\u03a3\u039f\u03a6\u039f\u03a3")); // σοφος / ΣΟΦΟΣ
});

Deno.test("names that differ visibly stay distinct", () => {
  for (
    const [x, y] of [
      ["alice", "alicia"],
      ["alice", "al.ice"],
      ["alice", "al-ice"],
      ["al.ice", "al_ice"],
      ["bob", "bob2"],
      ["Łukasz", "Lukasz"],
      ["日本", "日本人"],
      ["user1", "user2"],
      ["Eli", "Ell"],
    ]
  ) {
    assert.ok(!collide(x, y), `${x} and ${y} should be distinct`);
  }
});

Deno.test("every letter and digit shares a key with its skeleton and with its case fold", () => {
  // The property the two keys exist for: no single code point escapes
  // either relation (docs/PROTOCOL.md, Pseudonyms).
  const meet = (a: string[], b: string[]) => a.some((k) => b.includes(k));
  const misses: string[] = [];
  for (let cp = 0x30; cp < 0x30000; cp++) {
    if (cp >= 0xd800 && cp < 0xe000) continue;
    const c = String.fromCodePoint(cp);
    if (!/^[\p{L}\p{N}]$/u.test(c)) continue;
    const keys = pseudoKeys(c.normalize("NFC"));
    const looks = skeleton(c.normalize("NFKC")).normalize("NFC");
    const folded = c.toUpperCase().toLowerCase().normalize("NFC");
    if (!meet(keys, pseudoKeys(looks)) || !meet(keys, pseudoKeys(folded))) {
      misses.push(cp.toString(16));
    }
  }
  assert.deepEqual(misses, []);
});

Deno.test("invisible and filler characters are refused", () => {
  for (
    const name of [
      "alice\u3164",
      "\u3164",
      "\uffa0bob",
      "\u115f",
      "a\u1160b",
      "al\u200bice",
      "al\u200cice",
      "al\u200dice",
      "alice\u200e",
      "\u200falice",
      "al\u2060ice",
      "al\u2064ice",
      "\ufeffalice",
      "al\u202eice", // right-to-left override
      "al\u2066ice", // left-to-right isolate
      "al\u00adice", // soft hyphen
      "ali\u034fce", // combining grapheme joiner
      "alice\ufe0f", // variation selector
    ]
  ) {
    assert.equal(refusal(name), "invisible", JSON.stringify(name));
  }
});

Deno.test("other scripts and combining marks log in, shown as typed (NFC)", () => {
  for (
    const name of [
      "नमस्ते",
      "สวัสดี",
      "Łukasz",
      "日本",
      "Ζωή",
      "Мария",
      "עברית",
      "مريم",
      "Nguyễn",
      "x_y.z-1",
    ]
  ) {
    const r = checkPseudo(name);
    assert.ok(r.ok, `${name}: ${r.ok ? "" : r.reason}`);
    assert.equal(r.display, name.normalize("NFC"));
  }
  // Decomposed input is accepted and shown composed.
  const r = checkPseudo("Jose\u0301");
  assert.ok(r.ok);
  assert.equal(r.display, "Jos\u00e9");
  assert.ok(collide("Jose\u0301", "JOS\u00c9"));
});

Deno.test("separators may not start, end or repeat", () => {
  assert.equal(refusal("alice."), "separator-at-edge");
  assert.equal(refusal(".alice"), "separator-at-edge");
  assert.equal(refusal("_bob"), "separator-at-edge");
  assert.equal(refusal("bob-"), "separator-at-edge");
  assert.equal(refusal("-"), "separator-at-edge");
  assert.equal(refusal("a..b"), "separator-run");
  assert.equal(refusal("a._b"), "separator-run");
  assert.equal(refusal("a.b_c-d"), "accepted");
});

Deno.test("other characters, empty and overlong names are refused", () => {
  for (const name of ["a b", "a@b", "a/b", "a:b", "a\u0000b", "a\nb", "😀", "a+b", "a\u3000b"]) {
    assert.equal(refusal(name), "character", JSON.stringify(name));
  }
  assert.equal(refusal("\ud800"), "character"); // lone surrogate
  assert.equal(refusal(""), "empty");
  assert.equal(refusal("a".repeat(32)), "accepted");
  assert.equal(refusal("a".repeat(33)), "too-long");
  assert.equal(refusal("日".repeat(32)), "accepted");
  assert.equal(refusal("\u{1d41a}".repeat(32)), "accepted"); // 64 UTF-16 units, 32 code points
  assert.equal(refusal("a".repeat(100_000)), "too-long");
  // 32 characters typed decomposed are 32 after NFC.
  assert.equal(refusal("e\u0301".repeat(32)), "accepted");
});

Deno.test("combining marks need a base and may not pile up", () => {
  assert.equal(refusal("\u0301a"), "mark-without-base");
  assert.equal(refusal("a.\u0301b"), "mark-without-base");
  // Marks that compose with nothing, so NFC keeps them all.
  const marks = "\u0346\u0347\u0348\u0349\u034a\u034b";
  assert.equal(refusal("q" + marks.slice(0, MAX_MARKS_PER_BASE)), "accepted");
  assert.equal(refusal("q" + marks.slice(0, MAX_MARKS_PER_BASE + 1)), "too-many-marks");
  assert.equal(
    refusal("q" + marks.slice(0, MAX_MARKS_PER_BASE) + "q" + marks.slice(0, 2)),
    "accepted",
  );
  assert.equal(refusal("Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d"), "too-many-marks");
});

Deno.test("the ASCII shortcut gives UTS #39's skeleton: NFD, each code point's prototype, NFD", async () => {
  // An oracle written from the definition, straight from the data file.
  const { default: data } = await import("unhomoglyph/data.json", { with: { type: "json" } });
  const protos = data as Record<string, string>;
  const oracle = (s: string) =>
    [...s.normalize("NFD")].map((c) => protos[c] ?? c).join("").normalize("NFD");
  const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
  for (const a of ascii) {
    assert.equal(skeleton(a), oracle(a), JSON.stringify(a));
    for (const b of ascii) assert.equal(skeleton(a + b), oracle(a + b), JSON.stringify(a + b));
  }
  for (const name of ["alice", "ALICE", "aIice", "rnary", "O0o_l1I|", "x-y.z"]) {
    assert.equal(skeleton(name), oracle(name), name);
  }
});
