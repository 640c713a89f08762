/**
 * The load benchmark still runs end to end: `bench/run.ts --quick` (every
 * default scenario, cluster included, small sizes, ~30 s) must exit 0 and
 * print one parseable JSON line per result with positive figures; the hostile
 * scenarios (full runs only by default, Redis stopped under a flood included)
 * must run too, at smoke size. No timing
 * thresholds: this machine is shared and noisy, and the figures themselves
 * belong in docs/PERFORMANCE.md. Targets are data, judged in one place: that
 * judging is checked here directly.
 */
import assert from "node:assert/strict";
import { PROFILES, withOverrides } from "../bench/profiles.ts";
import { judge, type Result } from "../bench/report.ts";

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

// deno-lint-ignore no-explicit-any
type Line = Record<string, any>;

async function bench(args: string[]): Promise<Line[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/run.ts", ...args, "--no-save"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(150_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const stdout = new TextDecoder().decode(out.stdout);
  assert.deepEqual(out.code, 0, `bench exited ${out.code}:\n${stderr.slice(-3000)}`);
  return stdout.split("\n").filter((l) => l.trim() !== "").map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`stdout line is not JSON: ${l}`);
    }
  });
}

Deno.test("bench --quick prints a positive JSON result per scenario", async () => {
  const results = await bench(["--quick"]);
  assert.deepEqual(results.map((r) => r.scenario), EXPECTED);
  for (const r of results) {
    const what = `${r.scenario}: ${JSON.stringify(r)}`;
    assert(typeof r.unit === "string" && r.unit !== "", `unit missing in ${what}`);
    assert(typeof r.target === "string" && r.target !== "", `target missing in ${what}`);
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
    assert.equal(typeof byName[s].pass, "boolean", `${s} was not judged against its target`);
  }
  assert(byName.spm.p99_ms > 0 && byName.sma.p99_ms > 0, "latency percentiles missing");
  assert(byName["connect-rss"].sessions > 0, "no sessions logged in");
  assert(byName["spm-cluster-10k"].offered_share > 0, "paced cluster run measured nothing");
});

Deno.test("bench --only hostile runs the flood, slow-reader and Redis-stop scenarios", async () => {
  const results = await bench(["--smoke", "--only", "hostile"]);
  assert.deepEqual(
    results.map((r) => r.scenario),
    ["flood-sma", "flood-big", "slow-readers-small", "slow-readers-big", "redis-stop"],
  );
  const [floodSma, floodBig, slowSmall, slowBig, stop] = results;
  for (const r of [floodSma, floodBig]) {
    const what = JSON.stringify(r);
    assert(r.value > 0, `no flood measured: ${what}`);
    assert(r.pair_rate > 0 && r.p99_ms > 0, `the pair beside the flood measured nothing: ${what}`);
    assert(Number.isInteger(r.dropped), `dropped readers not counted: ${what}`);
    assert.equal(typeof r.pass, "boolean", `not judged: ${what}`);
  }
  for (const r of [slowSmall, slowBig]) {
    const what = JSON.stringify(r);
    assert(r.rss_peak_kb >= r.rss_read_peak_kb, `no RSS samples: ${what}`);
    assert(r.rss_read_peak_kb > r.rss_idle_kb, `no RSS samples while read: ${what}`);
    assert(Number.isFinite(r.growth_ratio), `no growth ratio: ${what}`);
    assert(Number.isFinite(r.idle_growth_ratio), `no growth ratio from idle: ${what}`);
    // Readers dropped in the warm-up leave nothing to send in the measured window.
    assert(r.sent_per_s > 0 || r.readers_dropped > 0, `nothing sent to the slow readers: ${what}`);
    assert.equal(typeof r.pass, "boolean", `not judged: ${what}`);
  }
  const what = JSON.stringify(stop);
  assert(stop.rss_peak_kb >= stop.rss_before_kb && stop.rss_before_kb > 0, `no RSS: ${what}`);
  assert.equal(stop.growth_mib_by_node.length, 3, `not every node sampled: ${what}`);
  assert(stop.cross_sent > 0 && stop.cross_delivered > 0, `no cross-node flood: ${what}`);
  assert(stop.waiter_asks > 0, `the waiting user never asked: ${what}`);
  // Acked at once while the user's session waits on Redis: the flood did reach its mailbox.
  assert(stop.local_acked > 0, `nothing sent to the waiting user was acked: ${what}`);
  assert.equal(typeof stop.pass, "boolean", `not judged: ${what}`);
});

Deno.test("a target passes only when every bound holds on a finite field", () => {
  const line = (extra: Partial<Result>): Result => ({
    scenario: "x",
    value: 10,
    unit: "u",
    ceiling: null,
    ratio: 0.5,
    ...extra,
  });
  const t = { text: "t", bounds: [{ field: "ratio", min: 0.4 }, { field: "p99_ms", max: 5 }] };
  assert.equal(judge(line({ p99_ms: 5 }), t), true);
  assert.equal(judge(line({ p99_ms: 5.1 }), t), false);
  assert.equal(judge(line({ ratio: 0.39, p99_ms: 1 }), t), false);
  assert.equal(judge(line({}), t), false, "a missing field must fail");
  assert.equal(judge(line({ ratio: null, p99_ms: 1 }), t), false, "null must fail");
  assert.equal(judge(line({}), { text: "none", bounds: [] }), undefined);
});

Deno.test("--set overrides a copy of the profile and rejects unknown fields", () => {
  const p = withOverrides(PROFILES.quick, { sets: ["spm.pairs=7"], rounds: 2 });
  assert.equal(p.spm.pairs, 7);
  assert.equal(p.rounds, 2);
  assert.equal(PROFILES.quick.spm.pairs, 30, "the built-in profile must not change");
  assert.equal(PROFILES.quick.rounds, 1);
  assert.throws(() => withOverrides(PROFILES.quick, { sets: ["spm.nope=1"] }), /--set spm.nope/);
  assert.throws(() => withOverrides(PROFILES.quick, { sets: ["name.x=1"] }), /--set name.x/);
  assert.throws(() => withOverrides(PROFILES.quick, { rounds: NaN }), /--rounds/);
  assert.throws(() => withOverrides(PROFILES.quick, { durationS: 0 }), /--duration/);
});
