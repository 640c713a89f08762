/**
 * What a run reports: one JSON line per result on stdout (and in the results
 * file), a table on stderr (progress: console.ts). Targets are data (a text
 * and bounds); `pass` is computed here from the line, never by a scenario.
 */
import type { Hist } from "./hist.ts";
import type { Compared, LoadResult } from "./measure.ts";

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

/** One field of a result line kept within limits, e.g. { field: "ratio", min: 0.4 }. */
export interface Bound {
  readonly field: string;
  readonly min?: number;
  readonly max?: number;
}

/** A target: what the table says, and the bounds that must all hold (none: nothing to pass). */
export interface Target {
  readonly text: string;
  readonly bounds: readonly Bound[];
}

/** `pass` for a line: every bound holds (a missing or non-finite field fails); undefined if none. */
export function judge(r: Result, t: Target): boolean | undefined {
  if (t.bounds.length === 0) return undefined;
  return t.bounds.every(({ field, min, max }) => {
    const v = r[field];
    return typeof v === "number" && Number.isFinite(v) &&
      (min === undefined || v >= min) && (max === undefined || v <= max);
  });
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
export const ms = (us: number) => us / 1000;

export function latency(h: Hist): Pick<Result, "p50_ms" | "p99_ms" | "max_ms"> {
  return { p50_ms: ms(h.quantile(0.5)), p99_ms: ms(h.quantile(0.99)), max_ms: ms(h.max) };
}

/** The CPU fields of one run of ours. */
export function cpuFields(o: LoadResult) {
  return {
    server_cpu_s: o.serverCpu,
    server_sys_s: o.serverSys,
    gen_cpu_s: o.genCpu,
    other_cpu_s: o.foreignCpu,
    window_s: o.elapsed,
  };
}

/** The CPU fields of ours and of the ceiling measured beside it. */
export function sideBySideCpu(o: LoadResult, c: LoadResult) {
  return { ...cpuFields(o), ceiling_cpu_s: c.serverCpu, ceiling_gen_cpu_s: c.genCpu };
}

/** What a rate scenario reports of ours next to the ceiling measured in the same rounds. */
export function comparedRates(r: Compared) {
  return {
    value: r.o.rate,
    ceiling: r.c.rate,
    ratio: r.ratio,
    ratio_rounds: r.rAll.map((x) => round(x, 3)),
    ...latency(r.o.hist),
    ...sideBySideCpu(r.o, r.c),
    ceiling_p99_ms: ms(r.c.hist.quantile(0.99)),
    rounds: r.oAll.map((x) => round(x, 0)),
    ceiling_rounds: r.cAll.map((x) => round(x, 0)),
  };
}

/** The lines of one run: printed, kept for the table, appended to the results file (if any). */
export class Reporter {
  readonly results: Result[] = [];
  readonly file: string | null;

  constructor(file: string | null) {
    this.file = file;
  }

  async start(meta: Record<string, unknown>): Promise<void> {
    if (!this.file) return;
    await Deno.mkdir(this.file.slice(0, this.file.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(this.file, JSON.stringify({ meta }) + "\n");
  }

  /** Rounds numbers, drops undefined fields, adds target and pass, and writes the line. */
  emit(r: Result, target: Target | null): void {
    if (target && !r.skipped && !r.error) {
      r.target = target.text;
      r.pass = judge(r, target);
    }
    for (const k of Object.keys(r)) {
      const v = r[k];
      if (v === undefined) delete r[k];
      else if (typeof v === "number") r[k] = Number.isFinite(v) ? round(v, v >= 100 ? 0 : 3) : null;
    }
    this.results.push(r);
    this.#write(r);
    console.log(JSON.stringify(r));
  }

  warn(warning: string): void {
    this.#write({ warning });
  }

  #write(obj: unknown): void {
    if (this.file) Deno.writeTextFileSync(this.file, JSON.stringify(obj) + "\n", { append: true });
  }
}

function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  return Math.abs(x) >= 1e6
    ? `${(x / 1e6).toFixed(2)}M`
    : Math.abs(x) >= 1e4
    ? `${(x / 1e3).toFixed(1)}k`
    : Math.abs(x) >= 100
    ? x.toFixed(0)
    : x.toFixed(2);
}

export function table(rs: Result[]): string {
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
