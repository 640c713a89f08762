/**
 * Seeded randomness for property tests.
 *
 * Every test that uses randomness takes its seed from `baseSeed()`: the value
 * of the CHATOS_SEED environment variable if set (decimal or 0x-hex), else a
 * fresh random 32-bit value. `withSeed` prints the seed when the test body
 * throws, so any failure can be replayed with `CHATOS_SEED=<seed> deno test …`.
 */

import { type Frame, Op } from "../../src/protocol/frames.ts";

/** mulberry32: tiny, fast, good enough for test-case generation. Not crypto. */
export class Rng {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** Next uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`int(${lo}, ${hi}): empty range`);
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(0, items.length - 1)];
  }

  /** `n` uniformly random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = this.u32();
      out[i] = v;
      out[i + 1] = v >>> 8;
      out[i + 2] = v >>> 16;
      out[i + 3] = v >>> 24;
    }
    for (; i < n; i++) out[i] = this.u32();
    return out;
  }

  /**
   * A well-formed string whose UTF-8 encoding is exactly `byteLen` bytes long,
   * mixing ASCII (including NUL), 2-, 3- and 4-byte characters (emoji among
   * them), and awkward code points (BOM, U+FFFD, noncharacters, surrogate
   * neighbours). Never contains a lone surrogate, so it round-trips.
   */
  unicode(byteLen: number): string {
    const parts: string[] = [];
    let left = byteLen;
    // Most strings get a "style" so long ones are not all the same mixture.
    const style = this.int(0, 3); // 0 mixed, 1 mostly ASCII, 2 mostly emoji, 3 mostly 2/3-byte
    while (left > 0) {
      let width: number;
      const r = this.float();
      if (style === 1) width = r < 0.9 ? 1 : this.int(1, 4);
      else if (style === 2) width = r < 0.7 ? 4 : this.int(1, 4);
      else if (style === 3) width = r < 0.8 ? this.int(2, 3) : this.int(1, 4);
      else width = this.int(1, 4);
      if (width > left) width = left; // the budget is exact: shrink to fit
      parts.push(String.fromCodePoint(this.#codePoint(width)));
      left -= width;
    }
    return parts.join("");
  }

  #codePoint(width: number): number {
    switch (width) {
      case 1:
        return this.chance(0.05) ? this.pick([0x00, 0x7f, 0x0a, 0x22]) : this.int(0x20, 0x7e);
      case 2:
        return this.chance(0.1) ? this.pick([0x80, 0x7ff, 0xe9, 0x3b1]) : this.int(0x80, 0x7ff);
      case 3: {
        if (this.chance(0.15)) {
          return this.pick([0x800, 0xd7ff, 0xe000, 0xfeff, 0xfffd, 0xfffe, 0xffff, 0x20ac]);
        }
        const cp = this.int(0x800, 0xffff - 0x800); // skip the 2048 surrogates
        return cp >= 0xd800 ? cp + 0x800 : cp;
      }
      default:
        if (this.chance(0.5)) return this.int(0x1f300, 0x1faff); // emoji blocks
        return this.chance(0.1) ? this.pick([0x10000, 0x10ffff]) : this.int(0x10000, 0x10ffff);
    }
  }

  /**
   * A byte length for one STRING field: usually short, sometimes medium, and
   * with probability `pHuge` anything up to the 32767-byte wire maximum.
   */
  stringLen(pHuge = 0.01): number {
    const r = this.float();
    if (r < pHuge) return this.chance(0.3) ? 32767 : this.int(1025, 32767);
    if (r < 0.1) return 0;
    if (r < 0.8) return this.int(1, 40);
    return this.int(41, 1100);
  }

  /** Signed 16-bit password, biased towards the edges. */
  password(): number {
    return this.chance(0.3) ? this.pick([-32768, -1, 0, 1, 32767]) : this.int(-32768, 32767);
  }

  /** A random valid frame; `op` picks the type, otherwise uniform over all 8. */
  frame(op: Op = this.int(1, 8) as Op, pHuge = 0.01): Frame {
    const s = () => this.unicode(this.stringLen(pHuge));
    switch (op) {
      case Op.CR:
        return { op, pseudo: s() };
      case Op.SPM:
        return { op, sender: s(), recipient: s(), message: s() };
      case Op.SMA:
        return { op, sender: s(), message: s() };
      case Op.TCPAsk:
      case Op.TCPAccept:
      case Op.TCPAbort:
      case Op.TCPConnect:
        return { op, sender: s(), recipient: s(), password: this.password() };
      case Op.ERROR:
        return { op, code: this.chance(0.5) ? this.int(1, 9) : this.int(-128, 127) };
    }
  }

  /**
   * Cut points splitting `total` bytes into chunks: returns chunk lengths
   * (all ≥ 1, summing to `total`). Sizes are drawn from a mix of tiny, small
   * and large so frame and field boundaries land everywhere.
   */
  cuts(total: number): number[] {
    const sizes: number[] = [];
    let left = total;
    const max = this.pick([1, 3, 16, 100, 4096, total]);
    while (left > 0) {
      const n = Math.min(left, this.chance(0.2) ? this.int(1, 3) : this.int(1, Math.max(1, max)));
      sizes.push(n);
      left -= n;
    }
    return sizes;
  }

  /** A derived generator, for independent streams reproducible from one seed. */
  fork(salt: number): Rng {
    return new Rng(Math.imul(this.seed ^ salt, 0x9e3779b1) ^ (salt >>> 3));
  }
}

function parseSeed(s: string): number {
  const n = s.startsWith("0x") || s.startsWith("0X") ? parseInt(s.slice(2), 16) : Number(s);
  if (!Number.isFinite(n)) throw new Error(`CHATOS_SEED=${JSON.stringify(s)} is not a number`);
  return n >>> 0;
}

let cachedSeed: number | undefined;

/** CHATOS_SEED if set (and readable), else one random seed for the whole run. */
export function baseSeed(): number {
  if (cachedSeed !== undefined) return cachedSeed;
  let fromEnv: string | undefined;
  const perm = Deno.permissions.querySync({ name: "env", variable: "CHATOS_SEED" });
  if (perm.state === "granted") fromEnv = Deno.env.get("CHATOS_SEED");
  cachedSeed = fromEnv !== undefined && fromEnv !== ""
    ? parseSeed(fromEnv)
    : crypto.getRandomValues(new Uint32Array(1))[0];
  return cachedSeed;
}

/** Stable 32-bit hash of a test name, so each test gets its own stream. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Runs `body` with an Rng seeded from the base seed and the test's name. If
 * the body throws, the seed is printed (and added to the error message) so
 * the failure can be replayed exactly.
 */
export async function withSeed(
  name: string,
  body: (rng: Rng) => void | Promise<void>,
): Promise<void> {
  const seed = baseSeed();
  const rng = new Rng(seed ^ hashName(name));
  try {
    await body(rng);
  } catch (e) {
    const hint = `[${name}] failed with CHATOS_SEED=${seed} (replay: CHATOS_SEED=${seed} ` +
      `deno test -A tests/protocol_test.ts --filter ${JSON.stringify(name)})`;
    console.error(hint);
    if (e instanceof Error) e.message = `${e.message}\n${hint}`;
    throw e;
  }
}
