/**
 * Pseudonym policy: which names may log in, how others see them, and the keys
 * that make two names "the same" so nobody can counterfeit anyone.
 *
 * - `display`: NFC of what the owner typed; others see the name as typed.
 * - `keys`: what the name holds; a name is refused while any of its keys is
 *   held. `canonical` (the first) is NFKC, then case folding, then the
 *   confusable skeleton of UTS #39 (NFD → each character through Unicode's
 *   confusables.txt → NFD), repeated until it settles; a second key takes the
 *   skeleton before folding (see `pseudoKeys` for why one key is not enough).
 *   "Alice", "ALICE", Cyrillic "аlice", fullwidth and math-bold letters,
 *   "aⅼice" (U+217C), "aǀice" (U+01C0) and "aIice" all share a key with "alice".
 *
 * The confusables data is Unicode's confusables.txt as the npm package
 * `unhomoglyph` ships it (data.json, source → prototype); see docs/PROTOCOL.md
 * for why that package. Importing the JSON costs a few ms once; the code
 * point map is built on the first check, not at import.
 */
import confusables from "unhomoglyph/data.json" with { type: "json" };

/** Longest display form, in code points (after NFC). */
export const MAX_PSEUDO_CODE_POINTS = 32;
/** Combining marks allowed on one letter or digit: real scripts need ≤ 3; more is stacking abuse. */
export const MAX_MARKS_PER_BASE = 4;
/** Input longer than this (UTF-16 units) is refused before normalising: bounds the work per CR. */
const MAX_RAW_UNITS = 8 * MAX_PSEUDO_CODE_POINTS;
/** Rounds of fold+skeleton; the data settles in two for every name tried, four is headroom. */
const MAX_ROUNDS = 4;

export type PseudoRefusal =
  | "empty"
  | "too-long"
  | "invisible"
  | "character"
  | "separator-at-edge"
  | "separator-run"
  | "mark-without-base"
  | "too-many-marks";

export type PseudoCheck =
  | {
    ok: true;
    /** NFC of what was typed: what others see. */
    display: string;
    /** The primary uniqueness key (case-folded skeleton). */
    canonical: string;
    /** Every key the name must hold (`canonical` first; one or two). */
    keys: string[];
  }
  | { ok: false; reason: PseudoRefusal };

/**
 * Why a name was refused, as what the name does ("it …"): for the server's log
 * line (the client only gets ERROR 3) and for the client, which checks a name
 * before sending it.
 */
export const REFUSAL_TEXT: Readonly<Record<PseudoRefusal, string>> = {
  "empty": "is empty",
  "too-long": `is longer than ${MAX_PSEUDO_CODE_POINTS} characters`,
  "invisible": "contains an invisible or filler character",
  "character": "contains a character that is not a letter, digit, mark, '.', '-' or '_'",
  "separator-at-edge": "starts or ends with '.', '-' or '_'",
  "separator-run": "has two of '.', '-', '_' in a row",
  "mark-without-base": "has a combining mark that follows no letter or digit",
  "too-many-marks": `has more than ${MAX_MARKS_PER_BASE} combining marks on one character`,
};

/** The rule in a sentence, for people choosing a name. */
export const PSEUDO_RULES =
  `A pseudo is 1 to ${MAX_PSEUDO_CODE_POINTS} letters, digits or combining marks of any ` +
  `script, with ".", "-" or "_" only between them (no spaces). Names that differ only in case ` +
  `or by lookalike characters ("bob", "Bob", "b0b", fullwidth or Cyrillic letters) are one name.`;

/** The first character of `name` that no pseudo may contain, or null. */
export function badCharacter(name: string): string | null {
  for (const ch of name.normalize("NFC")) {
    if (INVISIBLE.test(ch)) return ch;
    if (!BASE.test(ch) && !MARK.test(ch) && !SEPARATORS.has(ch)) return ch;
  }
  return null;
}

const INVISIBLE = /^\p{Default_Ignorable_Code_Point}$/u;
const BASE = /^[\p{L}\p{N}]$/u;
const MARK = /^\p{M}$/u;
const SEPARATORS = new Set([".", "-", "_"]);

/** Checks a pseudonym from a CR. Pure; a few µs. */
export function checkPseudo(raw: string): PseudoCheck {
  if (raw.length === 0) return { ok: false, reason: "empty" };
  if (raw.length > MAX_RAW_UNITS) return { ok: false, reason: "too-long" };
  const display = raw.normalize("NFC");
  const refusal = refusalOf(display);
  if (refusal !== null) return { ok: false, reason: refusal };
  const keys = pseudoKeys(display);
  return { ok: true, display, canonical: keys[0], keys };
}

function refusalOf(name: string): PseudoRefusal | null {
  let count = 0;
  let prev: "start" | "base" | "separator" = "start";
  let marks = 0;
  for (const ch of name) {
    if (++count > MAX_PSEUDO_CODE_POINTS) return "too-long";
    // Fillers such as U+3164 are letters (Lo), so this test comes first.
    if (INVISIBLE.test(ch)) return "invisible";
    if (BASE.test(ch)) {
      prev = "base";
      marks = 0;
    } else if (MARK.test(ch)) {
      if (prev !== "base") return "mark-without-base";
      if (++marks > MAX_MARKS_PER_BASE) return "too-many-marks";
    } else if (SEPARATORS.has(ch)) {
      if (prev === "start") return "separator-at-edge";
      if (prev === "separator") return "separator-run";
      prev = "separator";
    } else {
      return "character";
    }
  }
  return prev === "separator" ? "separator-at-edge" : null;
}

/**
 * The uniqueness keys of a name already accepted by `checkPseudo` (its
 * display form): the first is `canonical`, a second is there when it differs.
 *
 * One key cannot be both case-blind and confusable-blind. Folding first
 * (`canonical`) makes "ALICE" equal "alice" but misses Greek "ΚΑΤΕ" for
 * "KATE" (κ's prototype is ĸ) and "aIice" for "alice" (I's prototype is l, i's
 * is i). The skeleton first catches those but splits "ALICE" from "alice".
 * Merging both relations into one key chains too far ("ſ" folds to "s" and
 * looks like "f", so every "s" would equal "f"). So a name is held under both
 * readings, and two names collide when any key of one is a key of the other.
 */
export function pseudoKeys(display: string): string[] {
  const nfkc = display.normalize("NFKC");
  const foldFirst = settle(nfkc);
  const skeletonFirst = settle(skeleton(nfkc));
  return foldFirst === skeletonFirst ? [foldFirst] : [foldFirst, skeletonFirst];
}

/**
 * fold → skeleton until nothing changes: a prototype may be a capital ("0" →
 * "O") that folding then lowers. Two rounds settle every name tried; four is
 * headroom, and the result is a function of the input either way.
 */
function settle(s: string): string {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = skeleton(caseFold(s));
    if (next === s) break;
    s = next;
  }
  return s;
}

/**
 * Full case folding, near enough: upper then lower also folds "ß" to "ss",
 * final "ς" to "σ" and "ſ" to "s", which lower alone leaves apart.
 */
function caseFold(s: string): string {
  return s.toUpperCase().toLowerCase();
}

let prototypes: Map<string, string> | null = null;
/** Prototypes of the ASCII characters, null where one is not ASCII itself. */
let asciiPrototypes: (string | null)[] | null = null;

/** skeleton(X) of UTS #39: NFD, each code point to its prototype (confusables.txt), NFD again. */
export function skeleton(s: string): string {
  prototypes ??= new Map(Object.entries(confusables as Record<string, string>));
  // Most names are ASCII: NFD leaves them as they are, so a table does it
  // without the two normalisations (every login takes 3-9 skeletons).
  const ascii = asciiSkeleton(s);
  if (ascii !== null) return ascii;
  let out = "";
  for (const ch of s.normalize("NFD")) out += prototypes.get(ch) ?? ch;
  return out.normalize("NFD");
}

/** skeleton(s) for ASCII `s` whose prototypes are ASCII too, else null. */
function asciiSkeleton(s: string): string | null {
  const table = asciiPrototypes ??= Array.from({ length: 128 }, (_, c) => {
    const ch = String.fromCharCode(c);
    const p = prototypes!.get(ch) ?? ch;
    return [...p].every((ch) => ch.charCodeAt(0) < 128) ? p : null;
  });
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const p = c < 128 ? table[c] : null;
    if (p === null) return null;
    out += p;
  }
  return out;
}
