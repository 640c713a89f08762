/**
 * `deno task bench`: the load benchmark orchestrator.
 *
 * Starts the server under test and the ceilings (bench/ceiling_*.ts) as
 * separate processes, drives them with load generators (bench/loadgen.ts,
 * also separate processes), and prints one JSON line per scenario on stdout,
 * a progress line and a table on stderr, and saves the lines under
 * bench/results/. See docs/PERFORMANCE.md for what each scenario measures.
 *
 *   deno task bench              full run (~3 min)
 *   deno task bench --quick      smaller sizes, every scenario, < 60 s (the test suite runs this)
 *   deno task bench --smoke      tiny sizes, no cluster, ~10 s
 *   --only spm,link              just these scenarios (connect spm sma link cluster)
 *   --skip-cluster               no Redis cluster scenarios
 *   --rounds N --duration S      override repetitions / measured seconds per run
 *   --set sma.window=4           override one profile field (repeatable; see Profile)
 *   --cpu-prof DIR               run the server(s) with --cpu-prof into DIR
 *   --server-root DIR            run DIR/src/server/main.ts (a patched copy) as the server
 *   --no-save                    do not write bench/results/<time>.jsonl
 */
import { parseArgs } from "node:util";
import { Hist, type HistJson } from "./hist.ts";
import type { GenConfig } from "./loadgen.ts";
import {
  Child,
  cpuOf,
  cpuSplitOf,
  freePort,
  machineCpu,
  ROOT,
  rssKbOf,
  sleep,
  stopAll,
  waitForPort,
} from "./procs.ts";
import { frame, FrameScanner, OP_CR, OP_SPM, writeAll } from "./wire.ts";

// ---------------------------------------------------------------- options

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    "skip-cluster": { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    "cpu-prof": { type: "string" },
    "server-root": { type: "string" },
    "ceiling-tick": { type: "string" },
    set: { type: "string", multiple: true },
    "no-save": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (opt.help) {
  const doc = await Deno.readTextFile(new URL(import.meta.url));
  console.log(doc.slice(doc.indexOf("/**") + 4, doc.indexOf("*/")).replace(/^ \* ?/gm, ""));
  Deno.exit(0);
}

interface Profile {
  name: string;
  warmupMs: number;
  durationMs: number;
  rounds: number;
  connect: { sessions: number; gens: number; concurrency: number };
  spm: { pairs: number; window: number; msgSize: number };
  sma: { receivers: number; senders: number; window: number; msgSize: number };
  link: { chunk: number };
  cluster: { pairs: number; window: number; rate: number; receivers: number; senders: number };
  /** Also measure the ceiling's latency at the same half rate. */
  ceilingHalf: boolean;
  cluster_default: boolean;
}

const FULL: Profile = {
  name: "full",
  warmupMs: 1000,
  durationMs: 4000,
  rounds: 3,
  connect: { sessions: 19_000, gens: 2, concurrency: 64 },
  spm: { pairs: 50, window: 64, msgSize: 32 },
  sma: { receivers: 1000, senders: 4, window: 16, msgSize: 32 },
  link: { chunk: 64 * 1024 },
  cluster: { pairs: 60, window: 64, rate: 10_000, receivers: 1000, senders: 4 },
  ceilingHalf: true,
  cluster_default: true,
};
const QUICK: Profile = {
  ...FULL,
  name: "quick",
  warmupMs: 500,
  durationMs: 1500,
  rounds: 1,
  connect: { sessions: 4000, gens: 2, concurrency: 64 },
  spm: { pairs: 30, window: 64, msgSize: 32 },
  cluster: { pairs: 30, window: 64, rate: 10_000, receivers: 300, senders: 3 },
  ceilingHalf: false,
};
const SMOKE: Profile = {
  ...QUICK,
  name: "smoke",
  warmupMs: 200,
  durationMs: 500,
  connect: { sessions: 300, gens: 2, concurrency: 32 },
  spm: { pairs: 8, window: 16, msgSize: 32 },
  sma: { receivers: 100, senders: 2, window: 8, msgSize: 32 },
  cluster: { pairs: 6, window: 8, rate: 2000, receivers: 60, senders: 2 },
  cluster_default: false,
};

const P: Profile = opt.smoke ? SMOKE : opt.quick ? QUICK : FULL;
if (opt.rounds) P.rounds = Math.max(1, Number(opt.rounds));
if (opt.duration) P.durationMs = Math.max(100, Number(opt.duration) * 1000);
for (const kv of opt.set ?? []) {
  const m = kv.match(/^(\w+)\.(\w+)=(\d+(?:\.\d+)?)$/);
  const group = m && (P as unknown as Record<string, Record<string, number>>)[m[1]];
  if (!m || !group || typeof group !== "object" || !(m[2] in group)) {
    console.error(`--set ${kv}: expected group.field=number with a field of the profile`);
    Deno.exit(2);
  }
  (P as unknown as Record<string, Record<string, number>>)[m[1]] = {
    ...group,
    [m[2]]: Number(m[3]),
  };
}
const SERVER_ROOT = opt["server-root"] ? opt["server-root"].replace(/\/?$/, "/") : ROOT;

const ALL = ["connect", "spm", "sma", "link", "cluster"];
const only = opt.only ? opt.only.split(",").map((s) => s.trim()) : null;
for (const s of only ?? []) {
  if (!ALL.includes(s)) {
    console.error(`unknown scenario "${s}" (one of ${ALL.join(", ")})`);
    Deno.exit(2);
  }
}
const wanted = (s: string) =>
  only ? only.includes(s) : s !== "cluster" || (P.cluster_default && !opt["skip-cluster"]);

// ---------------------------------------------------------------- output

const t0 = performance.now();
const isTty = Deno.stderr.isTerminal();
const te = new TextEncoder();

function progress(msg: string): void {
  const s = Math.round((performance.now() - t0) / 1000);
  const line = `[${String(Math.floor(s / 60)).padStart(2, "0")}:${
    String(s % 60).padStart(2, "0")
  }] ${msg}`;
  Deno.stderr.writeSync(te.encode(isTty ? `\r\x1b[K${line}` : `${line}\n`));
}

function note(msg: string): void {
  Deno.stderr.writeSync(te.encode(`${isTty ? "\r\x1b[K" : ""}${msg}\n`));
}

export interface Result {
  scenario: string;
  value: number | null;
  unit: string;
  ceiling: number | null;
  ratio: number | null;
  p50_ms?: number;
  p99_ms?: number;
  max_ms?: number;
  server_cpu_s?: number;
  gen_cpu_s?: number;
  ceiling_cpu_s?: number;
  window_s?: number;
  target?: string;
  pass?: boolean;
  skipped?: string;
  error?: string;
  [k: string]: unknown;
}

const results: Result[] = [];
const resultsDir = `${ROOT}bench/results`;
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const resultsFile = `${resultsDir}/${stamp}-${P.name}.jsonl`;

async function machine(): Promise<Record<string, unknown>> {
  const mem = (await Deno.readTextFile("/proc/meminfo")).match(/MemTotal:\s+(\d+)/);
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/);
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: cpu?.[1],
    mem_gb: mem ? Math.round(Number(mem[1]) / 1024 / 1024 * 10) / 10 : undefined,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    kernel: Deno.osRelease(),
    profile: P.name,
    server: await codeVersion(),
  };
}

/**
 * The commit and uncommitted state of the server's src/: every scenario
 * spawns the server from the working tree, so an edit during the run would
 * silently mix versions. Compared again at the end. null without git.
 */
async function codeVersion(): Promise<string | null> {
  try {
    const git = (args: string[]) =>
      new Deno.Command("git", { args, cwd: SERVER_ROOT, stdout: "piped", stderr: "null" }).output();
    const head = await git(["rev-parse", "--short", "HEAD"]);
    if (!head.success) return null;
    const diff = await git(["diff", "HEAD", "--", "src"]);
    const dirty = diff.stdout.length === 0
      ? ""
      : `+dirty:${
        Array.from(new Uint8Array(await crypto.subtle.digest("SHA-1", diff.stdout)).slice(0, 4))
          .map((b) => b.toString(16).padStart(2, "0")).join("")
      }`;
    return new TextDecoder().decode(head.stdout).trim() + dirty;
  } catch {
    return null;
  }
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function emit(r: Result): void {
  for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
  for (const k of Object.keys(r)) {
    const v = r[k];
    if (typeof v === "number") r[k] = Number.isFinite(v) ? round(v, v >= 100 ? 0 : 3) : null;
  }
  results.push(r);
  const line = JSON.stringify(r);
  console.log(line);
  if (!opt["no-save"]) Deno.writeTextFileSync(resultsFile, line + "\n", { append: true });
}

// ---------------------------------------------------------------- processes

let genSeq = 0;
const SERVER_FLAGS = [
  "--log-level",
  "error",
  "--max-connections",
  "19500",
];

function denoArgs(script: string, extra: string[]): string[] {
  const prof = opt["cpu-prof"] && script.startsWith("src/")
    ? ["--cpu-prof", `--cpu-prof-dir=${opt["cpu-prof"]}`]
    : [];
  return ["run", "-A", ...prof, script, ...extra];
}

interface Proc {
  child: Child;
  port: number;
}

async function startServer(name: string, extra: string[] = []): Promise<Proc> {
  const port = freePort();
  const child = new Child({
    name,
    cmd: Deno.execPath(),
    cwd: SERVER_ROOT,
    args: denoArgs("src/server/main.ts", [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      ...SERVER_FLAGS,
      ...extra,
    ]),
  });
  await waitForPort(port, 15_000, child);
  return { child, port };
}

async function startCeiling(
  kind: "forwarder" | "broadcaster",
  extra: string[] = [],
): Promise<Proc> {
  const child = new Child({
    name: `ceiling_${kind}`,
    cmd: Deno.execPath(),
    args: denoArgs(`bench/ceiling_${kind}.ts`, ["--port", "0", ...extra]),
    stdin: true,
  });
  const ev = await child.next("listening", 15_000);
  return { child, port: ev.port as number };
}

function spawnGen(cfg: Omit<GenConfig, "gen">): Child {
  const gen = genSeq++;
  return new Child({
    name: `loadgen#${gen}(${cfg.mode}→${cfg.target})`,
    cmd: Deno.execPath(),
    args: ["run", "-A", "bench/loadgen.ts", JSON.stringify({ ...cfg, gen })],
    stdin: true,
  });
}

const cpuSum = (pids: number[]) => pids.reduce((s, p) => s + cpuOf(p), 0);
const sysSum = (pids: number[]) => pids.reduce((s, p) => s + cpuSplitOf(p)[1], 0);

interface LoadResult {
  rate: number;
  bytesRate: number;
  hist: Hist;
  serverCpu: number;
  /** The kernel's share of serverCpu (socket writes on loopback do the receiver's TCP work too). */
  serverSys: number;
  genCpu: number;
  /** CPU of the `others` processes (Redis) over the window. */
  otherCpu: number;
  /** CPU the rest of the machine used over the window (other users' work: noise). */
  foreignCpu: number;
  elapsed: number;
  errors: number;
  firstError?: string;
  sent: number;
}

/**
 * One measured run: generators set up, "go", warm up, "mark", measure for
 * durationMs, "stop", then they quit. CPU is the /proc delta over the window.
 */
async function runLoad(
  cfgs: Omit<GenConfig, "gen">[],
  servers: Proc[],
  label: string,
  others: number[] = [],
): Promise<LoadResult> {
  const gens = cfgs.map(spawnGen);
  try {
    progress(`${label}: setting up`);
    await Promise.all(gens.map((g) => g.next("ready", 60_000)));
    for (const g of gens) await g.send("go");
    progress(`${label}: warming up`);
    await sleep(P.warmupMs);
    const spids = servers.map((s) => s.child.pid);
    const gpids = gens.map((g) => g.pid);
    for (const g of gens) await g.send("mark");
    const s0 = cpuSum(spids);
    const k0 = sysSum(spids);
    const g0 = cpuSum(gpids);
    const o0 = cpuSum(others);
    const m0 = machineCpu();
    progress(`${label}: measuring ${P.durationMs / 1000} s`);
    await sleep(P.durationMs);
    for (const g of gens) await g.send("stop");
    const s1 = cpuSum(spids);
    const k1 = sysSum(spids);
    const g1 = cpuSum(gpids);
    const o1 = cpuSum(others);
    const m1 = machineCpu();
    const evs = await Promise.all(gens.map((g) => g.next("result", 20_000)));
    for (const s of servers) {
      if (s.child.exited) throw new Error(`${s.child.name} died: ${s.child.stderrTail}`);
    }
    const hist = new Hist();
    let delivered = 0;
    let bytes = 0;
    let elapsed = 0;
    let errors = 0;
    let sent = 0;
    let firstError: string | undefined;
    for (const e of evs) {
      hist.add(Hist.fromJSON(e.hist as HistJson));
      delivered += e.delivered as number;
      bytes += e.bytes as number;
      sent += e.sent as number;
      elapsed += (e.elapsed_s as number) / evs.length;
      errors += e.errors as number;
      firstError ??= e.first_error as string | undefined;
    }
    if (errors > 0) note(`  ! ${label}: ${errors} errors, first: ${firstError}`);
    return {
      rate: delivered / elapsed,
      bytesRate: bytes / elapsed,
      hist,
      serverCpu: s1 - s0,
      serverSys: k1 - k0,
      genCpu: g1 - g0,
      otherCpu: o1 - o0,
      foreignCpu: Math.max(0, m1 - m0 - (s1 - s0) - (g1 - g0) - (o1 - o0)),
      elapsed,
      errors,
      firstError,
      sent: sent / elapsed,
    };
  } finally {
    await Promise.all(gens.map((g) => g.stop(3000)));
  }
}

const ms = (us: number) => us / 1000;
function latency(h: Hist): Pick<Result, "p50_ms" | "p99_ms" | "max_ms"> {
  return { p50_ms: ms(h.quantile(0.5)), p99_ms: ms(h.quantile(0.99)), max_ms: ms(h.max) };
}

/** The CPU fields of one run of ours. */
function cpuFields(o: LoadResult) {
  return {
    server_cpu_s: o.serverCpu,
    server_sys_s: o.serverSys,
    gen_cpu_s: o.genCpu,
    other_cpu_s: o.foreignCpu,
    window_s: o.elapsed,
  };
}

/** What a rate scenario reports of ours next to the ceiling measured in the same rounds. */
function comparedRates(
  r: {
    c: LoadResult;
    o: LoadResult;
    cAll: number[];
    oAll: number[];
    ratio: number;
    rAll: number[];
  },
) {
  return {
    value: r.o.rate,
    ceiling: r.c.rate,
    ratio: r.ratio,
    ratio_rounds: r.rAll,
    ...latency(r.o.hist),
    ...sideBySideCpu(r.o, r.c),
    ceiling_p99_ms: ms(r.c.hist.quantile(0.99)),
    rounds: r.oAll,
    ceiling_rounds: r.cAll,
  };
}

/** The CPU fields of ours and of the ceiling measured beside it. */
function sideBySideCpu(o: LoadResult, c: LoadResult) {
  return { ...cpuFields(o), ceiling_cpu_s: c.serverCpu, ceiling_gen_cpu_s: c.genCpu };
}

function median<T>(xs: T[], key: (x: T) => number): T {
  const s = [...xs].sort((a, b) => key(a) - key(b));
  return s[Math.floor((s.length - 1) / 2)];
}

/**
 * Alternates ceiling and ours for P.rounds rounds. Returns the median run of
 * each, and the median of the per-round ratios: a round's two runs are
 * seconds apart, so other load on the machine tends to hit both alike.
 */
async function rounds(
  what: string,
  ceiling: () => Promise<LoadResult>,
  ours: () => Promise<LoadResult>,
  key: (r: LoadResult) => number,
): Promise<
  { c: LoadResult; o: LoadResult; cAll: number[]; oAll: number[]; ratio: number; rAll: number[] }
> {
  const cs: LoadResult[] = [];
  const os: LoadResult[] = [];
  for (let i = 0; i < P.rounds; i++) {
    const tag = P.rounds > 1 ? ` round ${i + 1}/${P.rounds}` : "";
    progress(`${what}${tag}: ceiling`);
    cs.push(await ceiling());
    progress(`${what}${tag}: chatos`);
    os.push(await ours());
  }
  const ratios = os.map((o, i) => key(o) / key(cs[i]));
  return {
    c: median(cs, key),
    o: median(os, key),
    cAll: cs.map((r) => round(key(r), 0)),
    oAll: os.map((r) => round(key(r), 0)),
    ratio: median(ratios, (x) => x),
    rAll: ratios.map((x) => round(x, 3)),
  };
}

// ---------------------------------------------------------------- scenarios

/** Ceilings measured in this run, reused for the cluster ratios. */
const ceilings: Record<string, number> = {};

interface ConnectRun {
  rate: number;
  logins: number;
  failures: number;
  elapsed: number;
  serverCpu: number;
  genCpu: number;
  foreignCpu: number;
  rss0: number;
  rss1: number;
}

/** Logs in P.connect.sessions idle sessions, then reads the target's RSS. */
async function connectRun(target: Proc, kind: "chatos" | "broadcaster"): Promise<ConnectRun> {
  const { sessions, gens: nGens, concurrency } = P.connect;
  await sleep(300);
  const rss0 = rssKbOf(target.child.pid);
  const per = Math.ceil(sessions / nGens);
  const gens = Array.from(
    { length: nGens },
    () =>
      spawnGen({ mode: "connect", target: kind, ports: [target.port], count: per, concurrency }),
  );
  try {
    await Promise.all(gens.map((g) => g.next("ready", 30_000)));
    const s0 = cpuOf(target.child.pid);
    const g0 = cpuSum(gens.map((g) => g.pid));
    const m0 = machineCpu();
    progress(`connect (${kind}): logging in ${per * nGens} sessions`);
    for (const g of gens) await g.send("go");
    const done = await Promise.all(gens.map((g) => g.next("done", 120_000)));
    const s1 = cpuOf(target.child.pid);
    const g1 = cpuSum(gens.map((g) => g.pid));
    const m1 = machineCpu();
    const logins = done.reduce((s, e) => s + (e.logins as number), 0);
    const failures = done.reduce((s, e) => s + (e.failures as number), 0);
    const elapsed = Math.max(...done.map((e) => e.elapsed_s as number));
    const firstError = done.map((e) => e.first_error).find((x) => x);
    if (failures > 0) note(`  ! connect: ${failures} failed logins, first: ${firstError}`);
    progress(`connect (${kind}): ${logins} sessions idle, letting RSS settle`);
    await sleep(1500);
    const rss1 = rssKbOf(target.child.pid);
    if (target.child.exited) {
      throw new Error(`${target.child.name} died: ${target.child.stderrTail}`);
    }
    return {
      rate: logins / elapsed,
      logins,
      failures,
      elapsed,
      serverCpu: s1 - s0,
      genCpu: g1 - g0,
      foreignCpu: Math.max(0, m1 - m0 - (s1 - s0) - (g1 - g0)),
      rss0,
      rss1,
    };
  } finally {
    await Promise.all(gens.map((g) => g.stop(5000)));
  }
}

async function scenarioConnect(): Promise<void> {
  // The floor: the minimal broadcaster (CR → ERROR 1, one pending read on a
  // 1 KiB buffer per socket, the server's idle read size) holding as many.
  let c: ConnectRun | null = null;
  const floor = await startCeiling("broadcaster", ["--read-buffer", "1024"]);
  try {
    c = await connectRun(floor, "broadcaster");
  } finally {
    await floor.child.stop();
  }
  const server = await startServer("server");
  let o: ConnectRun;
  try {
    o = await connectRun(server, "chatos");
  } finally {
    await server.child.stop();
  }
  emit({
    scenario: "connect",
    value: o.rate,
    unit: "logins/s",
    ceiling: c.rate,
    ratio: o.rate / c.rate,
    sessions: o.logins,
    failures: o.failures || undefined,
    window_s: o.elapsed,
    server_cpu_s: o.serverCpu,
    gen_cpu_s: o.genCpu,
    other_cpu_s: o.foreignCpu,
    ceiling_cpu_s: c.serverCpu,
    server_cpu_us_per_login: (o.serverCpu / o.logins) * 1e6,
    target: "≥ 5000 logins/s",
    pass: o.rate >= 5000,
  });
  const per = (r: ConnectRun) => (r.rss1 - r.rss0) / Math.max(1, r.logins);
  emit({
    scenario: "connect-rss",
    value: per(o),
    unit: "KiB/session",
    ceiling: per(c),
    ratio: per(o) / per(c),
    sessions: o.logins,
    rss_before_kb: o.rss0,
    rss_after_kb: o.rss1,
    ceiling_sessions: c.logins,
    // Lower is better here: the "ceiling" is the minimal server's floor.
    target: "≤ 8 KiB/session at 19k",
    pass: per(o) <= 8 && o.logins >= 19_000,
  });
}

async function scenarioSpm(): Promise<void> {
  const { pairs, window, msgSize } = P.spm;
  const fwd = await startCeiling("forwarder");
  const server = await startServer("server");
  try {
    const base = { mode: "spm" as const, pairs, window, msgSize };
    const run = (p: Proc, target: "chatos" | "forwarder", rate = 0, label = "spm") =>
      runLoad([{ ...base, target, ports: [p.port], rate }], [p], label);
    const { c, o, cAll, oAll, ratio, rAll } = await rounds(
      "spm",
      () => run(fwd, "forwarder"),
      () => run(server, "chatos"),
      (r) => r.rate,
    );
    ceilings.spm = c.rate;
    emit({
      scenario: "spm",
      unit: "msgs/s",
      ...comparedRates({ c, o, cAll, oAll, ratio, rAll }),
      pairs,
      window,
      msg_size: msgSize,
      errors: o.errors || undefined,
      target: "≥ 0.4× forwarder",
      pass: ratio >= 0.4,
    });
    const half = Math.round(o.rate / 2);
    progress(`spm-half: chatos paced at ${half} msgs/s`);
    const h = await run(server, "chatos", half, "spm-half");
    let ch: LoadResult | null = null;
    if (P.ceilingHalf) {
      progress(`spm-half: forwarder paced at ${half} msgs/s`);
      ch = await run(fwd, "forwarder", half, "spm-half");
    }
    const lat = latency(h.hist);
    emit({
      scenario: "spm-half",
      value: h.rate,
      unit: "msgs/s",
      ceiling: null,
      ratio: null,
      ...lat,
      ceiling_p50_ms: ch ? ms(ch.hist.quantile(0.5)) : undefined,
      ceiling_p99_ms: ch ? ms(ch.hist.quantile(0.99)) : undefined,
      offered: half,
      ...cpuFields(h),
      target: "p99 ≤ 5 ms at half max",
      pass: (lat.p99_ms ?? Infinity) <= 5,
    });
  } finally {
    await Promise.all([fwd.child.stop(), server.child.stop()]);
  }
}

async function scenarioSma(): Promise<void> {
  const { receivers, senders, window, msgSize } = P.sma;
  const bc = await startCeiling(
    "broadcaster",
    opt["ceiling-tick"] ? ["--tick", opt["ceiling-tick"]] : [],
  );
  const server = await startServer("server");
  try {
    const base = { mode: "sma" as const, receivers, senders, window, msgSize };
    const run = (p: Proc, target: "chatos" | "broadcaster") =>
      runLoad([{ ...base, target, ports: [p.port] }], [p], "sma");
    const { c, o, cAll, oAll, ratio, rAll } = await rounds(
      "sma",
      () => run(bc, "broadcaster"),
      () => run(server, "chatos"),
      (r) => r.rate,
    );
    ceilings.sma = c.rate;
    emit({
      scenario: "sma",
      unit: "deliveries/s",
      ...comparedRates({ c, o, cAll, oAll, ratio, rAll }),
      receivers,
      senders,
      sma_per_s: o.sent,
      errors: o.errors || undefined,
      target: "≥ 0.5× broadcaster",
      pass: ratio >= 0.5,
    });
  } finally {
    await Promise.all([bc.child.stop(), server.child.stop()]);
  }
}

async function scenarioLink(): Promise<void> {
  const { chunk } = P.link;
  const fwd = await startCeiling("forwarder");
  const server = await startServer("server");
  try {
    const run = (p: Proc, target: "chatos" | "forwarder") =>
      runLoad([{ mode: "link", target, ports: [p.port], chunk }], [p], "link");
    const { c, o, cAll, oAll, ratio, rAll } = await rounds(
      "link",
      () => run(fwd, "forwarder"),
      () => run(server, "chatos"),
      (r) => r.bytesRate,
    );
    const mb = (x: number) => x / 1e6;
    emit({
      scenario: "link",
      value: mb(o.bytesRate),
      unit: "MB/s",
      ceiling: mb(c.bytesRate),
      ratio,
      ratio_rounds: rAll,
      ...sideBySideCpu(o, c),
      rounds: oAll.map((x) => round(mb(x), 0)),
      ceiling_rounds: cAll.map((x) => round(mb(x), 0)),
      chunk,
      errors: o.errors || undefined,
      target: "≥ 0.8× forwarder",
      pass: ratio >= 0.8,
    });
  } finally {
    await Promise.all([fwd.child.stop(), server.child.stop()]);
  }
}

// ---------------------------------------------------------------- cluster

async function startRedis(): Promise<{ child: Child; url: string; dir: string }> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "chatos-bench-redis-" });
  const child = new Child({
    name: "redis-server",
    cmd: "redis-server",
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--daemonize",
      "no",
    ],
  });
  await waitForPort(port, 10_000, child);
  return { child, url: `redis://127.0.0.1:${port}`, dir };
}

/** One SPM from a user on node 0 to a user on node 1: does cross-node delivery work at all? */
async function probeCluster(ports: number[]): Promise<string | null> {
  const conns: Deno.Conn[] = [];
  const timer = setTimeout(() => conns.forEach((c) => c.close()), 5000);
  try {
    const login = async (port: number, who: string) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(c);
      await writeAll(c, frame(OP_CR, [who]));
      const b = new Uint8Array(2);
      const n = await c.read(b);
      if (n !== 2 || b[1] !== 1) throw new Error(`login ${who} on port ${port}: ${b}`);
      return c;
    };
    const a = await login(ports[0], "probeA");
    const b = await login(ports[1], "probeB");
    await writeAll(a, frame(OP_SPM, ["probeA", "probeB", "hello"]));
    const buf = new Uint8Array(256);
    const ack = await a.read(buf);
    if (ack === null || buf[0] !== 8 || buf[1] !== 1) {
      return `cross-node SPM not acknowledged with ERROR 1 (got ${buf.subarray(0, 2)})`;
    }
    let got = false;
    const scan = new FrameScanner();
    while (!got) {
      const n = await b.read(buf);
      if (n === null) return "recipient's connection closed";
      scan.feed(buf, n, { onFrame: (op) => (got ||= op === OP_SPM) });
    }
    return null;
  } catch (e) {
    return `cross-node probe failed: ${e instanceof Error ? e.message : e}`;
  } finally {
    clearTimeout(timer);
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}

const CLUSTER = ["spm-cluster", "spm-cluster-10k", "sma-cluster"];

async function scenarioCluster(): Promise<void> {
  const skip = (why: string) => {
    note(`cluster scenarios skipped: ${why}`);
    for (const s of CLUSTER) {
      emit({ scenario: s, value: null, unit: "", ceiling: null, ratio: null, skipped: why });
    }
  };
  try {
    await new Deno.Command("redis-server", { args: ["--version"], stdout: "null" }).output();
  } catch {
    return skip("redis-server is not installed");
  }
  progress("cluster: starting redis-server and 3 nodes");
  const redis = await startRedis();
  const nodes: Proc[] = [];
  try {
    const secret = "bench-cluster-secret-0123456789";
    for (let i = 0; i < 3; i++) {
      try {
        nodes.push(
          await startServer(`node${i}`, [
            "--presence",
            "redis",
            "--redis-url",
            redis.url,
            "--cluster-secret",
            secret,
            "--node-id",
            `bench${i}`,
            "--bridge-host",
            "127.0.0.1",
            "--bridge-port",
            "0",
            "--advertise-host",
            "127.0.0.1",
          ]),
        );
      } catch (e) {
        return skip(`node ${i} did not start in cluster mode: ${(e as Error).message}`);
      }
    }
    const ports = nodes.map((n) => n.port);
    const broken = await probeCluster(ports);
    if (broken) return skip(broken);

    const { pairs, window, rate, receivers, senders } = P.cluster;
    const spm = (r: number, label: string) =>
      runLoad(
        [{
          mode: "spm",
          target: "chatos",
          ports,
          pairs,
          window,
          msgSize: P.spm.msgSize,
          rate: r,
        }],
        nodes,
        label,
        [redis.child.pid],
      );
    progress("spm-cluster: max rate");
    const o = await spm(0, "spm-cluster");
    // The target is absolute; the single-process forwarder is kept only as a reference.
    emit({
      scenario: "spm-cluster",
      value: o.rate,
      unit: "msgs/s",
      ceiling: null,
      ratio: null,
      single_node_ceiling: ceilings.spm,
      ...latency(o.hist),
      ...cpuFields(o),
      redis_cpu_s: o.otherCpu,
      pairs,
      window,
      errors: o.errors || undefined,
      target: "≥ 100k msgs/s",
      pass: o.rate >= 100_000,
    });
    progress(`spm-cluster-10k: paced at ${rate} msgs/s`);
    const h = await spm(rate, "spm-cluster-10k");
    const lat = latency(h.hist);
    emit({
      scenario: "spm-cluster-10k",
      value: h.rate,
      unit: "msgs/s",
      ceiling: null,
      ratio: null,
      ...lat,
      offered: rate,
      ...cpuFields(h),
      redis_cpu_s: h.otherCpu,
      errors: h.errors || undefined,
      target: `p99 ≤ 10 ms at ${rate} msgs/s`,
      pass: (lat.p99_ms ?? Infinity) <= 10 && h.rate >= rate * 0.95,
    });
    progress("sma-cluster");
    const s = await runLoad(
      [{
        mode: "sma",
        target: "chatos",
        ports,
        receivers,
        senders,
        window: P.sma.window,
        msgSize: P.sma.msgSize,
      }],
      nodes,
      "sma-cluster",
      [redis.child.pid],
    );
    emit({
      scenario: "sma-cluster",
      value: s.rate,
      unit: "deliveries/s",
      ceiling: null,
      ratio: null,
      single_node_ceiling: ceilings.sma,
      ...latency(s.hist),
      ...cpuFields(s),
      redis_cpu_s: s.otherCpu,
      receivers,
      senders,
      sma_per_s: s.sent,
      errors: s.errors || undefined,
      target: "(none; compare with sma)",
    });
  } finally {
    await Promise.all(nodes.map((n) => n.child.stop()));
    await redis.child.stop();
    await Deno.remove(redis.dir, { recursive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------- table

function fmt(x: number | null | undefined, unit = ""): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  const s = Math.abs(x) >= 1e6
    ? `${(x / 1e6).toFixed(2)}M`
    : Math.abs(x) >= 1e4
    ? `${(x / 1e3).toFixed(1)}k`
    : Math.abs(x) >= 100
    ? x.toFixed(0)
    : x.toFixed(2);
  return s + unit;
}

function table(rs: Result[]): string {
  const head = ["scenario", "value", "unit", "ceiling", "ratio", "p50 ms", "p99 ms", "srv CPU s"];
  head.push("gen CPU s", "other CPU s", "target", "ok");
  const rows = rs.map((r) => [
    r.scenario,
    r.skipped ? "skipped" : r.error ? "error" : fmt(r.value),
    r.unit,
    fmt(r.ceiling),
    r.ratio == null ? "—" : `${r.ratio.toFixed(2)}×`,
    fmt(r.p50_ms),
    fmt(r.p99_ms),
    fmt(r.server_cpu_s),
    fmt(r.gen_cpu_s),
    fmt(r.other_cpu_s as number | undefined),
    r.target ?? (r.skipped ? r.skipped.slice(0, 40) : r.error ? r.error.slice(0, 40) : ""),
    r.pass === undefined ? "" : r.pass ? "yes" : "NO",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i >= 10 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

// ---------------------------------------------------------------- main

const SCENARIOS: [string, () => Promise<void>, string[]][] = [
  ["connect", scenarioConnect, ["connect", "connect-rss"]],
  ["spm", scenarioSpm, ["spm", "spm-half"]],
  ["sma", scenarioSma, ["sma"]],
  ["link", scenarioLink, ["link"]],
  ["cluster", scenarioCluster, CLUSTER],
];

async function main(): Promise<number> {
  const info = await machine();
  if (!opt["no-save"]) {
    await Deno.mkdir(resultsDir, { recursive: true });
    await Deno.writeTextFile(resultsFile, JSON.stringify({ meta: info }) + "\n");
  }
  note(
    `chatos bench (${P.name}): server ${info.server ?? "?"}, ${info.nproc} CPUs, ` +
      `${info.mem_gb} GB, deno ${info.deno}` +
      `, ${P.rounds} round(s) × ${P.durationMs / 1000} s`,
  );
  let failed = 0;
  for (const [name, fn, produces] of SCENARIOS) {
    if (!wanted(name)) continue;
    const before = results.length;
    try {
      await fn();
    } catch (e) {
      failed++;
      const msg = e instanceof Error ? e.message : String(e);
      note(`scenario ${name} failed: ${msg}`);
      for (const s of produces) {
        if (results.slice(before).some((r) => r.scenario === s)) continue;
        emit({ scenario: s, value: null, unit: "", ceiling: null, ratio: null, error: msg });
      }
    } finally {
      await stopAll();
    }
  }
  progress(`done in ${Math.round((performance.now() - t0) / 1000)} s`);
  note("");
  note(table(results));
  const after = await codeVersion();
  if (after !== info.server) {
    const warning = `src/ changed during the run (${info.server} -> ${after}): ` +
      "scenarios may have run different server code";
    note(`\n! ${warning}`);
    if (!opt["no-save"]) {
      Deno.writeTextFileSync(resultsFile, JSON.stringify({ warning }) + "\n", { append: true });
    }
  } else note(`server code: ${after}`);
  if (!opt["no-save"]) note(`\nsaved: ${resultsFile.slice(ROOT.length)}`);
  return failed > 0 ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} finally {
  await stopAll(1000);
}
Deno.exit(code);
