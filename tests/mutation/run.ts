/**
 * `deno task mutate`: plants one deliberate bug at a time in src/, runs the
 * tests meant to catch it, expects them to fail, and puts the file back.
 * Not part of `deno task test` (it runs the suite many times over).
 *
 *   deno task mutate                      # every mutation
 *   deno task mutate --only drain,hmac    # those whose name contains a word
 *   deno task mutate --list               # names, files and tests, nothing run
 *   deno task mutate --timeout 300        # seconds per mutation before it counts as hung
 *
 * Each snippet is looked up in every file under src/ and must occur exactly
 * once, so the list survives files moving; a snippet that is missing or
 * ambiguous is reported (update it, do not skip it). The file is restored
 * after each run, also on Ctrl-C or an error. Exit code: 0 when every
 * mutation was caught.
 */
import { type Mutation, MUTATIONS } from "./mutations.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const SRC = `${REPO}src`;

type Outcome =
  | "caught"
  | "SURVIVED"
  | "hung (caught)"
  | "SNIPPET NOT FOUND"
  | "SNIPPET AMBIGUOUS"
  | "TEST FILE MISSING";

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

/** The one file under src/ holding `snippet` exactly once, or why not. */
async function locate(m: Mutation): Promise<{ path: string; text: string } | Outcome> {
  const hits: { path: string; text: string; n: number }[] = [];
  for (const path of await filesUnder(SRC)) {
    const text = await Deno.readTextFile(path);
    const n = occurrences(text, m.find);
    if (n > 0) hits.push({ path, text, n });
  }
  if (hits.length === 0) return "SNIPPET NOT FOUND";
  if (hits.length > 1 || hits[0].n > 1) return "SNIPPET AMBIGUOUS";
  return hits[0];
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
  const main = `${REPO}src/server/main.ts`;
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (ppid === 1 && cmd.includes(main)) Deno.kill(Number(e.name), "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
}

async function runTests(tests: string[], timeoutS: number): Promise<"pass" | "fail" | "hung"> {
  const args = ["test", "-A", "--no-check", ...tests.map((t) => `${REPO}${t}`)];
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
  else {
    const failed = (out + err).split("\n").filter((l) => /\.\.\. FAILED/.test(l));
    for (const l of failed.slice(0, 6)) console.log(`      ${l.trim()}`);
  }
  if (timedOut) {
    await killOrphanNodes();
    return "hung";
  }
  return status.success ? "pass" : "fail";
}

async function apply(m: Mutation, timeoutS: number): Promise<Outcome> {
  const found = await locate(m);
  if (typeof found === "string") return found;
  // A missing test file would fail the run and pass for a caught mutation.
  for (const t of m.tests) {
    try {
      await Deno.stat(`${REPO}${t}`);
    } catch {
      return "TEST FILE MISSING";
    }
  }
  live = { path: found.path, original: found.text };
  try {
    await Deno.writeTextFile(found.path, found.text.replace(m.find, () => m.replace));
    const r = await runTests(m.tests, timeoutS);
    return r === "pass" ? "SURVIVED" : r === "hung" ? "hung (caught)" : "caught";
  } finally {
    restore();
  }
}

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const only = arg("only")?.split(",").filter(Boolean);
  const timeoutS = Number(arg("timeout") ?? 300);
  const chosen = MUTATIONS.filter((m) => !only || only.some((w) => m.name.includes(w)));
  if (Deno.args.includes("--list")) {
    for (const m of chosen) {
      const where = await locate(m);
      const file = typeof where === "string" ? where : where.path.slice(REPO.length);
      console.log(`${m.name}\n  ${file}\n  ${m.tests.join(" ")}`);
    }
    Deno.exit(0);
  }
  const results: Array<[string, Outcome, number]> = [];
  for (const m of chosen) {
    console.log(`── ${m.name}: ${m.why}`);
    const started = Date.now();
    const outcome = await apply(m, timeoutS);
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
