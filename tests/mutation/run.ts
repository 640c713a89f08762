/**
 * `deno task mutate`: plants one deliberate bug at a time in src/, runs the
 * tests meant to catch it, expects them to fail, and puts the file back.
 * Not part of `deno task test` (it runs the suite many times over).
 *
 *   deno task mutate                      # every mutation
 *   deno task mutate --only drain,hmac    # those whose name contains a word
 *   deno task mutate --list               # where each snippet is and its tests, nothing run;
 *                                         # exits 1 if a snippet or test file needs updating
 *   deno task mutate --timeout 300        # seconds per mutation before it counts as hung
 *   deno task mutate --no-baseline        # skip the unmutated run of the test files first
 *
 * Each snippet is looked up in every file under src/ and must occur exactly
 * once, so the list survives files moving; a snippet that is missing or
 * ambiguous is reported with where its lines are now (update it, do not skip
 * it). First every named test file runs once without a mutation: a test that
 * already fails there does not count as catching anything. The file is
 * restored after each run, also on Ctrl-C or an error. Exit code: 0 when
 * every mutation was caught.
 */
import { parseArgs } from "node:util";
import { NODE_MAIN } from "../../src/ops/node_command.ts";
import { type Mutation, MUTATIONS } from "./mutations.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const SRC = `${REPO}src`;
/** Heap cap for each test run (the baseline runs with it too). */
const HEAP_MB = 1536;

type Outcome =
  | "caught"
  | "SURVIVED"
  | "hung (caught)"
  | "SNIPPET NOT FOUND"
  | "SNIPPET AMBIGUOUS"
  | "TEST FILE MISSING"
  | "RUN FAILED";

/** Why a mutation could not be applied: the outcome and what to fix, for a person. */
interface Problem {
  outcome: Outcome;
  detail: string;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(path));
    else if (e.isFile) out.push(path);
  }
  return out.sort();
}

function occurrences(text: string, snippet: string): number {
  let n = 0;
  for (let i = text.indexOf(snippet); i >= 0; i = text.indexOf(snippet, i + 1)) n++;
  return n;
}

const rel = (path: string) => path.slice(REPO.length);
const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;

/**
 * For a snippet found nowhere: where each of its lines (trimmed) still
 * occurs, so whoever fixes it sees whether the code moved, changed a little,
 * or is gone.
 */
function missingHint(m: Mutation, files: Array<{ path: string; text: string }>): string {
  const lines = m.find.split("\n").map((l) => l.trim()).filter((l) => l.length >= 8);
  const out: string[] = [];
  for (const [i, line] of lines.entries()) {
    const at: string[] = [];
    for (const f of files) {
      const k = f.text.indexOf(line);
      if (k >= 0) at.push(`${rel(f.path)}:${lineOf(f.text, k)}`);
    }
    const label = lines.length > 1 ? `line ${i + 1} ` : "";
    out.push(
      `${label}${JSON.stringify(line)}: ${
        at.length ? `found at ${at.slice(0, 4).join(", ")}` : "nowhere"
      }`,
    );
  }
  out.push(
    "update `find` (and `replace`) in tests/mutation/mutations.ts to today's code; " +
      "if the behaviour itself is gone, remove the mutation and say so",
  );
  return out.join("\n");
}

/** The one file under src/ holding `snippet` exactly once, or why not. */
async function locate(m: Mutation): Promise<{ path: string; text: string } | Problem> {
  const files = await Promise.all(
    (await filesUnder(SRC)).map(async (path) => ({ path, text: await Deno.readTextFile(path) })),
  );
  const hits = files.map((f) => ({ ...f, n: occurrences(f.text, m.find) })).filter((f) => f.n > 0);
  if (hits.length === 0) return { outcome: "SNIPPET NOT FOUND", detail: missingHint(m, files) };
  if (hits.length > 1 || hits[0].n > 1) {
    const where = hits.map((h) => `${rel(h.path)} (${h.n}×)`).join(", ");
    return {
      outcome: "SNIPPET AMBIGUOUS",
      detail: `found in ${where}; lengthen \`find\` with a neighbouring line so it names one place`,
    };
  }
  return hits[0];
}

/** Test files the mutation names that do not exist (a missing one would fail the run: a false "caught"). */
async function missingTests(m: Mutation): Promise<Problem | null> {
  const missing: string[] = [];
  for (const t of m.tests) {
    try {
      await Deno.stat(`${REPO}${t}`);
    } catch {
      missing.push(t);
    }
  }
  if (missing.length === 0) return null;
  return {
    outcome: "TEST FILE MISSING",
    detail: `${missing.join(", ")} not found; point \`tests\` at the files that now test this ` +
      `(grep tests/ for the behaviour)`,
  };
}

function indent(text: string): string {
  return text.split("\n").map((l) => `      ${l}`).join("\n");
}

/** The file being mutated now, for the signal handler to restore. */
let live: { path: string; original: string } | null = null;

function restore(): void {
  if (!live) return;
  Deno.writeTextFileSync(live.path, live.original);
  live = null;
}

let child: Deno.ChildProcess | null = null;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    restore();
    try {
      child?.kill("SIGKILL");
    } catch { /* gone */ }
    console.error(`\n${sig}: source restored, stopping`);
    Deno.exit(130);
  });
}

/**
 * A test run killed on timeout leaves the nodes it started (own sessions, see
 * src/ops/processes.ts) to init: stop those running this worktree's server.
 */
async function killOrphanNodes(): Promise<void> {
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (ppid === 1 && cmd.includes(NODE_MAIN)) Deno.kill(Number(e.name), "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
}

interface TestRun {
  status: "pass" | "fail" | "hung";
  /** Names of the tests that failed ("… ... FAILED" lines). */
  failed: string[];
}

async function runTests(tests: string[], timeoutS: number): Promise<TestRun> {
  // A mutation that removes a bound can make a test allocate until the
  // machine swaps: cap the heap so it fails (caught) instead.
  const args = [
    "test",
    "-A",
    "--no-check",
    `--v8-flags=--max-old-space-size=${HEAP_MB}`,
    ...tests.map((t) => `${REPO}${t}`),
  ];
  child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const c = child;
  const output = Promise.all([new Response(c.stdout).text(), new Response(c.stderr).text()]);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutS * 1000);
  const status = await c.status;
  clearTimeout(timer);
  child = null;
  const [out, err] = await output;
  if (Deno.env.get("MUTATE_VERBOSE")) console.log(out + err);
  const failed = new Set<string>();
  for (const l of (out + err).split("\n")) {
    const m = l.match(/^(.*) \.\.\. FAILED/);
    if (m) failed.add(m[1].trim());
  }
  if (timedOut) await killOrphanNodes();
  return {
    status: timedOut ? "hung" : status.success ? "pass" : "fail",
    failed: [...failed],
  };
}

/**
 * Tests that already fail without any mutation, by test file. A mutation
 * counts as caught only by a test that passes here: otherwise a broken or
 * flaky test would make every mutation look caught.
 */
type Baseline = Map<string, Set<string>>;

async function baselineFor(files: string[], timeoutS: number): Promise<Baseline> {
  const base: Baseline = new Map();
  for (const f of files) {
    const r = await runTests([f], timeoutS);
    base.set(f, new Set(r.failed));
    if (r.status === "pass") continue;
    const why = r.status === "hung"
      ? `hung past ${timeoutS} s`
      : r.failed.length
      ? `${r.failed.length} failing: ${r.failed.join("; ")}`
      : "the run failed before any test (load error? run it by hand)";
    console.log(`   baseline ${f}: ${why}`);
    if (r.status === "hung" || r.failed.length === 0) {
      throw new Error(`${f} does not run cleanly without a mutation; fix that first`);
    }
  }
  return base;
}

async function apply(m: Mutation, timeoutS: number, base: Baseline | null): Promise<Outcome> {
  const found = await locate(m);
  const problem = "outcome" in found ? found : await missingTests(m);
  if (problem) {
    console.log(indent(problem.detail));
    return problem.outcome;
  }
  if ("outcome" in found) return found.outcome; // unreachable: narrows the type
  console.log(`   in ${rel(found.path)}:${lineOf(found.text, found.text.indexOf(m.find))}`);
  live = { path: found.path, original: found.text };
  let r: TestRun;
  try {
    await Deno.writeTextFile(found.path, found.text.replace(m.find, () => m.replace));
    r = await runTests(m.tests, timeoutS);
  } finally {
    restore();
  }
  if (r.status === "hung") return "hung (caught)";
  const known = new Set(m.tests.flatMap((t) => [...base?.get(t) ?? []]));
  const caughtBy = r.failed.filter((name) => !known.has(name));
  for (const name of caughtBy.slice(0, 6)) console.log(`      ${name} ... FAILED`);
  if (caughtBy.length > 6) console.log(`      (and ${caughtBy.length - 6} more)`);
  if (caughtBy.length > 0) return "caught";
  if (r.status === "fail" && r.failed.length === 0) {
    console.log("      the run failed but no test did (a load or syntax error from `replace`?)");
    return "RUN FAILED";
  }
  if (r.failed.length > 0) console.log("      only tests that fail without it failed");
  return "SURVIVED";
}

const USAGE = `Usage: deno task mutate [options]

Plants one known bug at a time in src/, runs the tests meant to catch it, and
puts the file back. Every mutation runs 10 to 15 minutes in all.

Options:
  --only WORD,...   only the mutations whose name contains one of the words
  --list            where each snippet is and its tests; nothing runs (exit 1 if
                    a snippet or test file needs updating)
  --timeout SECONDS per mutation before it counts as hung (default 300)
  --no-baseline     skip the unmutated run of the test files first
  -h, --help        this text`;

/** The options, or an exit code: a typo must not start a quarter-hour run. */
function options():
  | { only?: string[]; timeoutS: number; list: boolean; baseline: boolean }
  | number {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        only: { type: "string" },
        list: { type: "boolean" },
        timeout: { type: "string", default: "300" },
        "no-baseline": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`mutate: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const timeoutS = Number(values.timeout);
  if (!Number.isInteger(timeoutS) || timeoutS < 1) {
    console.error(`mutate: --timeout: "${values.timeout}" is not a whole number of seconds`);
    return 2;
  }
  return {
    only: values.only?.split(",").filter(Boolean),
    timeoutS,
    list: values.list ?? false,
    baseline: !values["no-baseline"],
  };
}

if (import.meta.main) {
  const opts = options();
  if (typeof opts === "number") Deno.exit(opts);
  const { only, timeoutS } = opts;
  const chosen = MUTATIONS.filter((m) => !only || only.some((w) => m.name.includes(w)));
  if (opts.list) {
    let problems = 0;
    for (const m of chosen) {
      const where = await locate(m);
      const problem = "outcome" in where ? where : await missingTests(m);
      const file = "outcome" in where
        ? where.outcome
        : `${rel(where.path)}:${lineOf(where.text, where.text.indexOf(m.find))}`;
      console.log(`${m.name}\n  ${file}\n  ${m.tests.join(" ")}`);
      if (problem) {
        problems++;
        if (!("outcome" in where)) console.log(`  ${problem.outcome}`);
        console.log(indent(problem.detail));
      }
    }
    if (problems > 0) console.log(`\n${problems} of ${chosen.length} mutations need updating`);
    Deno.exit(problems > 0 ? 1 : 0);
  }
  const results: Array<[string, Outcome, number]> = [];
  let base: Baseline | null = null;
  if (opts.baseline) {
    const files = [...new Set(chosen.flatMap((m) => m.tests))].sort();
    console.log(`── baseline: ${files.length} test files without any mutation`);
    base = await baselineFor(files, timeoutS);
  }
  for (const m of chosen) {
    console.log(`── ${m.name}: ${m.why}`);
    const started = Date.now();
    const outcome = await apply(m, timeoutS, base);
    const secs = Math.round((Date.now() - started) / 1000);
    console.log(`   ${outcome} (${secs} s)`);
    results.push([m.name, outcome, secs]);
  }
  console.log("\n| mutation | outcome | seconds |\n| --- | --- | --- |");
  for (const [name, outcome, secs] of results) console.log(`| ${name} | ${outcome} | ${secs} |`);
  const bad = results.filter(([, o]) => !o.includes("caught"));
  if (bad.length > 0) console.log(`\n${bad.length} of ${results.length} not caught`);
  Deno.exit(bad.length > 0 ? 1 : 0);
}
