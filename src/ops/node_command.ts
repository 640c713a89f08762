/**
 * How a node is run. `deno task serve` (deno.json), the Docker image, `deno
 * task cluster`, the tests and the benchmark all start src/server/main.ts
 * with these Deno arguments, so what is tested and measured is what operators
 * run; tests/compose_test.ts checks deno.json and the Dockerfile say the same.
 */

/**
 * V8 grows its young generation with the message rate, up to 3 × 32 MiB on
 * this machine by default, whatever our memory bounds say: 40 flooded
 * non-readers cost 2.8–2.9× their bound from an idle node, against the ≤ 2×
 * that issue 9 asks. Capping a semi-space at 8 MiB brings that to 1.8–1.95×;
 * SPM/SMA throughput stayed within run-to-run noise (docs/PERFORMANCE.md,
 * measured alternately in one session). 4 MiB holds memory tighter still but
 * cost ~12–15% of SPM/SMA throughput.
 */
export const NODE_V8_FLAGS = "--max-semi-space-size=8";

/**
 * `deno run` arguments for a node, before main.ts's own flags. `-A`: Deno
 * reads /proc/self/limits (the descriptor budget's default) only with
 * --allow-all. `v8Extra` comes after our V8 flags, so it wins (an A/B).
 */
export function nodeRunArgs(
  main: string,
  opts: { denoFlags?: string[]; v8Extra?: string } = {},
): string[] {
  const v8 = opts.v8Extra ? `${NODE_V8_FLAGS},${opts.v8Extra}` : NODE_V8_FLAGS;
  return ["run", "-A", `--v8-flags=${v8}`, ...(opts.denoFlags ?? []), main];
}

/** This tree's server entry point. */
export const NODE_MAIN = new URL("../server/main.ts", import.meta.url).pathname;
