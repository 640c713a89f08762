/**
 * Measured runs: generators set up, "go", warm up, "mark", measure, "stop";
 * CPU is the /proc delta over the window. And the alternation of ceiling and
 * ours over the profile's rounds that gives the ours/ceiling ratio.
 */
import { sleep } from "../src/lib/async.ts";
import type { GenConfig } from "./gen/config.ts";
import type { Harness, Proc } from "./harness.ts";
import { Hist, type HistJson } from "./hist.ts";
import { cpuOf, cpuSplitOf, machineCpu } from "./procs.ts";

/** What one generator reported for the window. */
export interface GenResult {
  rate: number;
  hist: Hist;
  delivered: number;
  /** Messages it sent, and those answered with ERROR 1, over the window. */
  sent: number;
  acked: number;
  errors: number;
  /** Its connections the server closed during the load. */
  ended: number;
  /** Its messages answered with an ERROR other than 1. */
  refused: number;
  /** Its senders that had a message refused (spm: their recipient was dropped). */
  refusingSenders: number;
  firstError?: string;
}

export interface LoadResult {
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
  /** Each generator's own figures, in the order of the configs. */
  gens: GenResult[];
}

const cpuSum = (pids: number[]) => pids.reduce((s, p) => s + cpuOf(p), 0);
const sysSum = (pids: number[]) => pids.reduce((s, p) => s + cpuSplitOf(p)[1], 0);

export interface LoadOptions {
  /** Processes whose CPU is reported as otherCpu (Redis). */
  others?: () => number[];
  /** Called once the generators are ready (before "go"), then every 100 ms until "stop". */
  sample?: () => void;
  /** The measured window: what happens during it (default: wait the profile's duration). */
  window?: () => Promise<void>;
}

/** One measured run of `cfgs` (one generator each) against `servers`. */
export async function runLoad(
  h: Harness,
  cfgs: Omit<GenConfig, "gen">[],
  servers: Proc[],
  label: string,
  o: LoadOptions = {},
): Promise<LoadResult> {
  const { warmupMs, durationMs } = h.profile;
  const others = o.others ?? (() => []);
  const gens = cfgs.map((c) => h.spawnGen(c));
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    h.console.progress(`${label}: setting up`);
    await Promise.all(gens.map((g) => g.next("ready", 60_000)));
    o.sample?.();
    if (o.sample) sampler = setInterval(o.sample, 100);
    for (const g of gens) await g.send("go");
    h.console.progress(`${label}: warming up`);
    await sleep(warmupMs);
    const spids = servers.map((s) => s.child.pid);
    const gpids = gens.map((g) => g.pid);
    for (const g of gens) await g.send("mark");
    const s0 = cpuSum(spids), k0 = sysSum(spids), g0 = cpuSum(gpids);
    const o0 = cpuSum(others()), m0 = machineCpu();
    h.console.progress(`${label}: measuring${o.window ? "" : ` ${durationMs / 1000} s`}`);
    await (o.window ? o.window() : sleep(durationMs));
    clearInterval(sampler);
    for (const g of gens) await g.send("stop");
    const s1 = cpuSum(spids), k1 = sysSum(spids), g1 = cpuSum(gpids);
    const o1 = cpuSum(others()), m1 = machineCpu();
    const evs = await Promise.all(gens.map((g) => g.next("result", 20_000)));
    for (const s of servers) {
      if (s.child.exited) throw new Error(`${s.child.name} died: ${s.child.stderrTail}`);
    }
    const per = evs.map((e): GenResult & { bytes: number; elapsed: number } => ({
      rate: (e.delivered as number) / (e.elapsed_s as number),
      hist: Hist.fromJSON(e.hist as HistJson),
      delivered: e.delivered as number,
      acked: (e.acked as number | undefined) ?? 0,
      errors: e.errors as number,
      ended: (e.ended as number | undefined) ?? 0,
      refused: (e.refused as number | undefined) ?? 0,
      refusingSenders: (e.refusing_senders as number | undefined) ?? 0,
      firstError: e.first_error as string | undefined,
      bytes: e.bytes as number,
      sent: e.sent as number,
      elapsed: e.elapsed_s as number,
    }));
    const hist = new Hist();
    for (const g of per) hist.add(g.hist);
    const sum = (f: (g: (typeof per)[number]) => number) => per.reduce((s, g) => s + f(g), 0);
    const elapsed = sum((g) => g.elapsed) / per.length;
    const errors = sum((g) => g.errors);
    const firstError = per.map((g) => g.firstError).find((x) => x);
    if (errors > 0) h.console.note(`  ! ${label}: ${errors} errors, first: ${firstError}`);
    return {
      rate: sum((g) => g.delivered) / elapsed,
      bytesRate: sum((g) => g.bytes) / elapsed,
      hist,
      serverCpu: s1 - s0,
      serverSys: k1 - k0,
      genCpu: g1 - g0,
      otherCpu: o1 - o0,
      foreignCpu: Math.max(0, m1 - m0 - (s1 - s0) - (g1 - g0) - (o1 - o0)),
      elapsed,
      errors,
      firstError,
      sent: sum((g) => g.sent) / elapsed,
      gens: per,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(gens.map((g) => g.stop(3000)));
  }
}

/** Ours and the ceiling over the same rounds: the median runs, the median ratio, every round's. */
export interface Compared {
  c: LoadResult;
  o: LoadResult;
  cAll: number[];
  oAll: number[];
  ratio: number;
  rAll: number[];
}

function median<T>(xs: T[], key: (x: T) => number): T {
  const s = [...xs].sort((a, b) => key(a) - key(b));
  return s[Math.floor((s.length - 1) / 2)];
}

/**
 * Alternates ceiling and ours for the profile's rounds. Returns the median run
 * of each, and the median of the per-round ratios: a round's two runs are
 * seconds apart, so other load on the machine tends to hit both alike.
 */
export async function alternate(
  h: Harness,
  what: string,
  ceiling: () => Promise<LoadResult>,
  ours: () => Promise<LoadResult>,
  key: (r: LoadResult) => number,
): Promise<Compared> {
  const n = h.profile.rounds;
  const cs: LoadResult[] = [];
  const os: LoadResult[] = [];
  for (let i = 0; i < n; i++) {
    const tag = n > 1 ? ` round ${i + 1}/${n}` : "";
    h.console.progress(`${what}${tag}: ceiling`);
    cs.push(await ceiling());
    h.console.progress(`${what}${tag}: chatos`);
    os.push(await ours());
  }
  const ratios = os.map((o, i) => key(o) / key(cs[i]));
  return {
    c: median(cs, key),
    o: median(os, key),
    cAll: cs.map(key),
    oAll: os.map(key),
    ratio: median(ratios, (x) => x),
    rAll: ratios,
  };
}
