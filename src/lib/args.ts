/** Command lines as node:util parseArgs reads them, with one fix every tool here needs. */

/**
 * `--max-connections -5` means the value -5 (which the range check then
 * refuses by name), not a flag "-5": parseArgs would otherwise say "Did you
 * forget to specify the option argument".
 */
export function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (/^--[a-z-]+$/.test(args[i]) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else out.push(args[i]);
  }
  return out;
}
