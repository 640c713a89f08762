/**
 * The load benchmark still runs end to end: `bench/run.ts --quick` (every
 * scenario, cluster included, small sizes, ~30 s) must exit 0 and print one
 * parseable JSON line per scenario with positive figures. No timing thresholds: this machine is
 * shared and noisy, and the figures themselves belong in docs/PERFORMANCE.md.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;
const EXPECTED = [
  "connect",
  "connect-rss",
  "spm",
  "spm-half",
  "sma",
  "link",
  "spm-cluster",
  "spm-cluster-10k",
  "sma-cluster",
];

Deno.test("bench --quick prints a positive JSON result per scenario", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/run.ts", "--quick", "--no-save"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(150_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const stdout = new TextDecoder().decode(out.stdout);
  assert.deepEqual(out.code, 0, `bench exited ${out.code}:\n${stderr.slice(-3000)}`);

  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  const results = lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`stdout line is not JSON: ${l}`);
    }
  });
  assert.deepEqual(results.map((r) => r.scenario), EXPECTED);
  for (const r of results) {
    const what = `${r.scenario}: ${JSON.stringify(r)}`;
    assert(typeof r.unit === "string" && r.unit !== "", `unit missing in ${what}`);
    if (r.scenario === "connect-rss") {
      // RSS growth over a few hundred sessions is within the heap's own noise: only sane.
      assert(Number.isFinite(r.value) && r.rss_after_kb > 0, `no RSS figure in ${what}`);
      continue;
    }
    assert(r.value > 0, `value not positive in ${what}`);
    if (r.ceiling !== null) assert(r.ceiling > 0, `ceiling not positive in ${what}`);
    if (r.ratio !== null) assert(r.ratio > 0, `ratio not positive in ${what}`);
    for (const k of ["p50_ms", "p99_ms", "server_cpu_s", "gen_cpu_s"]) {
      if (k in r) assert(r[k] >= 0, `${k} negative in ${what}`);
    }
  }
  const byName = Object.fromEntries(results.map((r) => [r.scenario, r]));
  for (const s of ["spm", "sma", "link"]) {
    assert(byName[s].ratio > 0, `${s} has no ours/ceiling ratio`);
    assert(byName[s].server_cpu_s > 0, `${s} measured no server CPU`);
  }
  assert(byName.spm.p99_ms > 0 && byName.sma.p99_ms > 0, "latency percentiles missing");
  assert(byName["connect-rss"].sessions > 0, "no sessions logged in");
});
