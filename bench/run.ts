/**
 * `deno task bench`: the load benchmark orchestrator.
 *
 * Starts the server under test and the ceilings (bench/ceiling_*.ts) as
 * separate processes, drives them with load generators (bench/loadgen.ts,
 * also separate processes), and prints one JSON line per result on stdout,
 * a progress line and a table on stderr, and saves the lines under
 * bench/results/. Scenarios are bench/scenarios/*.ts; sizes bench/profiles.ts.
 * See docs/PERFORMANCE.md for what each scenario measures.
 *
 *   deno task bench              full run (~3 min 30 s)
 *   deno task bench --quick      smaller sizes, no hostile or Redis Cluster scenarios, ~30 s
 *                                (the tests run this)
 *   deno task bench --smoke      tiny sizes, no cluster, ~10 s
 *   deno task bench --only peers InspIRCd and ngIRCd beside ours (bench/scenarios/peers.ts;
 *                                Debian's inspircd and ngircd; full runs include them)
 *   --only spm,link              just these scenarios, groups or result lines (see --list);
 *                                quote names with brackets: --only 'spm-cluster[rc]'
 *   --list                       the scenarios, their groups and default profiles
 *   --skip-cluster               no scenario that needs Redis (standalone or Redis Cluster)
 *   --rounds N --duration S      override repetitions / measured seconds per run
 *   --set sma.window=4           override one profile field (repeatable; see Profile)
 *   --cpu-prof DIR               run the server(s) with --cpu-prof into DIR
 *   --server-v8-flags F          run the server(s) with --v8-flags=F (an A/B of V8 settings)
 *   --server-root DIR            run DIR/src/server/main.ts (a patched copy) as the server
 *   --ceiling-tick timeout       the broadcaster's tick (immediate by default)
 *   --no-save                    do not write bench/results/<time>.jsonl
 */
import { parseArgs } from "node:util";
import { errorMessage } from "../src/lib/errors.ts";
import { Fixtures } from "./fixtures.ts";
import { peersTable } from "./peers/table.ts";
import { Harness } from "./harness.ts";
import { machineInfo, serverVersion } from "./machine.ts";
import { PROFILES, withOverrides } from "./profiles.ts";
import { ROOT } from "./procs.ts";
import { Console } from "./console.ts";
import { Reporter, type Result, table } from "./report.ts";
import type { RunContext, Scenario } from "./scenario.ts";
import { SCENARIOS } from "./scenarios/mod.ts";

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    list: { type: "boolean", default: false },
    "skip-cluster": { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    "cpu-prof": { type: "string" },
    "server-v8-flags": { type: "string" },
    "server-root": { type: "string" },
    "ceiling-tick": { type: "string" },
    set: { type: "string", multiple: true },
    "no-save": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

function usage(code: number): never {
  const doc = Deno.readTextFileSync(new URL(import.meta.url));
  console.log(doc.slice(doc.indexOf("/**") + 4, doc.indexOf("*/")).replace(/^ \* ?/gm, ""));
  Deno.exit(code);
}

function fail(msg: string): never {
  console.error(msg);
  Deno.exit(2);
}

if (opt.help) usage(0);
if (opt.list) {
  for (const s of SCENARIOS) {
    const groups = s.groups.length ? ` [${s.groups.join(", ")}]` : "";
    console.log(`${s.name.padEnd(19)} ${s.profiles.join(" ").padEnd(16)} ${groups}`);
  }
  Deno.exit(0);
}

/** The scenarios to run: those --only names (by name, group or result line), else the profile's. */
function pick(): Scenario[] {
  const names = opt.only?.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (!names) {
    return SCENARIOS.filter((s) =>
      s.profiles.includes(profile.name) && !(opt["skip-cluster"] && s.groups.includes("cluster"))
    );
  }
  const matches = (s: Scenario, n: string) =>
    s.name === n || s.groups.includes(n) || n in s.targets;
  for (const n of names) {
    if (!SCENARIOS.some((s) => matches(s, n))) {
      const known = [...new Set(SCENARIOS.flatMap((s) => [s.name, ...s.groups]))];
      fail(`unknown scenario "${n}" (one of ${known.join(", ")})`);
    }
  }
  return SCENARIOS.filter((s) => names.some((n) => matches(s, n)));
}

let profile = PROFILES[opt.smoke ? "smoke" : opt.quick ? "quick" : "full"];
try {
  profile = withOverrides(profile, {
    rounds: opt.rounds === undefined ? undefined : Number(opt.rounds),
    durationS: opt.duration === undefined ? undefined : Number(opt.duration),
    sets: opt.set,
  });
} catch (e) {
  fail(errorMessage(e));
}
const chosen = pick();
const serverRoot = opt["server-root"] ? opt["server-root"].replace(/\/?$/, "/") : ROOT;
const stamp = new Date().toISOString().replace(/[:.]/g, "-");

const out = new Console();
const reporter = new Reporter(
  opt["no-save"] ? null : `${ROOT}bench/results/${stamp}-${profile.name}.jsonl`,
);
const h = new Harness(profile, out, {
  serverRoot,
  cpuProfDir: opt["cpu-prof"],
  serverV8Flags: opt["server-v8-flags"],
  ceilingTick: opt["ceiling-tick"],
});
const fixtures = new Fixtures(h);
const measured = new Map<string, number>();

/** Runs one scenario; a failure becomes an error line for each line it had not reported. */
async function runScenario(s: Scenario): Promise<boolean> {
  const reported = new Set<string>();
  const ctx: RunContext = {
    profile,
    h,
    fixtures,
    measured,
    emit(r: Result) {
      const target = s.targets[r.scenario];
      if (target === undefined) throw new Error(`${s.name} reported an undeclared "${r.scenario}"`);
      reported.add(r.scenario);
      reporter.emit(r, target);
    },
  };
  try {
    await s.run(ctx);
    return true;
  } catch (e) {
    const error = errorMessage(e);
    out.note(`scenario ${s.name} failed: ${error}`);
    for (const name of Object.keys(s.targets)) {
      if (reported.has(name)) continue;
      reporter.emit(
        { scenario: name, value: null, unit: "", ceiling: null, ratio: null, error },
        null,
      );
    }
    return false;
  } finally {
    await h.children.stop(2000, await fixtures.children());
  }
}

async function main(): Promise<number> {
  const info = await machineInfo(profile.name, serverRoot);
  await reporter.start(info);
  out.note(
    `chatos bench (${profile.name}): server ${info.server ?? "?"}, ${info.nproc} CPUs, ` +
      `${info.mem_gb} GB, deno ${info.deno}, ${profile.rounds} round(s) × ` +
      `${profile.durationMs / 1000} s: ${chosen.map((s) => s.name).join(", ")}`,
  );
  let failed = 0;
  try {
    for (const s of chosen) if (!await runScenario(s)) failed++;
  } finally {
    await fixtures.stop();
  }
  out.progress(`done in ${out.seconds} s`);
  out.note("");
  out.note(table(reporter.results));
  const peers = peersTable(reporter.results);
  if (peers) out.note(`\n${peers}`);
  const after = await serverVersion(serverRoot);
  if (after !== info.server) {
    const warning = `src/ changed during the run (${info.server} -> ${after}): ` +
      "scenarios may have run different server code";
    out.note(`\n! ${warning}`);
    reporter.warn(warning);
  } else out.note(`server code: ${after}`);
  if (reporter.file) out.note(`\nsaved: ${reporter.file.slice(ROOT.length)}`);
  return failed > 0 ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} finally {
  await h.children.stop(1000);
}
Deno.exit(code);
