/**
 * Summarises a V8 .cpuprofile (from `deno run --cpu-prof`, e.g. written by
 * `deno task bench --cpu-prof DIR`): the functions with the most self time,
 * and the most inclusive time, as a share of all samples.
 *
 * Usage: deno run -A bench/profile_summary.ts FILE.cpuprofile [--top N] [--filter TEXT]
 */
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { top: { type: "string", default: "25" }, filter: { type: "string" } },
});
if (positionals.length !== 1) {
  console.error("usage: profile_summary.ts FILE.cpuprofile [--top N] [--filter TEXT]");
  Deno.exit(2);
}
const prof: Profile = JSON.parse(await Deno.readTextFile(positionals[0]));
const top = Number(values.top);

const byId = new Map<number, Node>();
const parent = new Map<number, number>();
for (const n of prof.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}

function label(n: Node): string {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(src|bench|ext|node_modules)\//, "$1/").replace(
    /^file:\/\//,
    "",
  );
  const name = f.functionName || "(anonymous)";
  return file ? `${name} ${file}:${f.lineNumber + 1}` : name;
}

const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  all += dt;
  let id: number | undefined = prof.samples[i];
  const leaf = byId.get(id!)!;
  self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt);
  const seen = new Set<string>();
  while (id !== undefined) {
    const l = label(byId.get(id)!);
    if (!seen.has(l)) {
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + dt);
    }
    id = parent.get(id);
  }
}

const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${(all / 1e6).toFixed(2)} s sampled)`);
  const rows = [...m].filter(([l]) => !values.filter || l.includes(values.filter))
    .sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [l, t] of rows) {
    console.log(
      `${(100 * t / all).toFixed(1).padStart(6)}%  ${(t / 1000).toFixed(0).padStart(7)} ms  ${l}`,
    );
  }
};
show("self time", self);
show("inclusive time", total);
