/**
 * Text from others, made safe to print on a terminal: every character a
 * terminal would act on instead of show (C0 and C1 controls, so every escape
 * sequence; DEL; bidirectional overrides and isolates; line separators) is
 * replaced by a visible spelling. `\x1b` becomes `^[`, `\n` `^J`, DEL `^?`;
 * the others `\u{202e}`. Nothing is ever interpreted, nothing is dropped.
 */

// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function spell(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20) return "^" + String.fromCharCode(code + 0x40);
  if (code === 0x7f) return "^?";
  return `\\u{${code.toString(16)}}`;
}

export function visible(s: string): string {
  return s.replace(UNSAFE, spell);
}
