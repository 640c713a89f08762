/**
 * Rules on who imports whom, over every module of src/ and bench/ (type-only imports included),
 * read from `deno info --json`: no import cycle, and the client library reaches nothing of the
 * server or of presence (it is shipped on its own; what both sides share lives in protocol/).
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);
const rel = (url: string) => url.slice(ROOT.href.length);

/** Module (path from the repository root) → the repository modules it imports. */
export type Graph = Map<string, Set<string>>;

interface DenoInfo {
  modules: Array<{
    specifier: string;
    dependencies?: Array<{ code?: { specifier: string }; type?: { specifier: string } }>;
  }>;
}

/** The graph of the repository's own modules in a `deno info --json` answer. */
export function graphOf(info: DenoInfo): Graph {
  const own = (s: string | undefined): s is string => !!s && s.startsWith(ROOT.href);
  const g: Graph = new Map();
  for (const m of info.modules) {
    if (!own(m.specifier)) continue;
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier]);
    g.set(rel(m.specifier), new Set(deps.filter(own).map(rel)));
  }
  return g;
}

/** One import loop per strongly connected component (Tarjan), as a path back to its start. */
export function cycles(g: Graph): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.unshift(w);
    } while (w !== v);
    if (scc.length > 1 || g.get(v)?.has(v)) out.push(loopThrough(g, scc[0]));
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** A shortest import path from `v` back to `v` (v is on a cycle). */
function loopThrough(g: Graph, v: string): string[] {
  for (const w of g.get(v) ?? []) {
    const back = pathTo(g, w, (m) => m === v);
    if (back) return [v, ...back];
  }
  throw new Error(`${v} is on no cycle`);
}

/** The import path from `from` to the first module `bad` accepts, or null if none is reachable. */
export function pathTo(g: Graph, from: string, bad: (m: string) => boolean): string[] | null {
  const parent = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift()!;
    if (bad(v)) {
      const path = [v];
      for (let p = parent.get(v); p; p = parent.get(p)) path.unshift(p);
      return path;
    }
    for (const w of g.get(v) ?? []) {
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return null;
}

/** Every .ts file under these directories of the repository. */
function sources(...dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: URL) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory && e.name !== "results") walk(new URL(`${e.name}/`, dir));
      else if (e.isFile && e.name.endsWith(".ts")) out.push(new URL(e.name, dir).href);
    }
  };
  for (const d of dirs) walk(new URL(d, ROOT));
  return out.sort();
}

/** The graph of every module under src/ and bench/: one `deno info` over an entry importing all. */
async function repoGraph(): Promise<Graph> {
  const files = sources("src/", "bench/");
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(entry, files.map((f) => `import "${f}";\n`).join(""));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", new URL("deno.json", ROOT).pathname, entry],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `deno info failed: ${err}`);
    const g = graphOf(JSON.parse(new TextDecoder().decode(out.stdout)));
    assert.equal(g.size, files.length, "every module is in the graph");
    return g;
  } finally {
    await Deno.remove(entry);
  }
}

const isClient = (m: string) => m.startsWith("src/client/");
const isServerSide = (m: string) => m.startsWith("src/server/") || m.startsWith("src/presence/");

let graph: Promise<Graph> | null = null;

Deno.test("imports: no cycle in src/ or bench/", async () => {
  const found = cycles(await (graph ??= repoGraph())).map((c) => c.join(" → "));
  assert.deepEqual(found, [], `import cycles:\n${found.join("\n")}`);
});

Deno.test("imports: src/client reaches nothing of src/server or src/presence", async () => {
  const g = await (graph ??= repoGraph());
  const leaks = [...g.keys()].filter(isClient).map((m) => pathTo(g, m, isServerSide))
    .filter((p) => p !== null).map((p) => p.join(" → "));
  assert.deepEqual(leaks, [], `the client library imports server-side code:\n${leaks.join("\n")}`);
});

Deno.test("imports: the checks catch a planted cycle and a planted client → server import", () => {
  const g: Graph = new Map([
    ["bench/harness.ts", new Set(["bench/report.ts"])],
    ["bench/report.ts", new Set(["bench/measure.ts"])],
    ["bench/measure.ts", new Set(["bench/harness.ts", "src/lib/async.ts"])],
    ["src/lib/async.ts", new Set()],
    ["src/client/requests.ts", new Set(["src/protocol/mod.ts"])],
    ["src/protocol/mod.ts", new Set(["src/presence/presence.ts"])],
    ["src/presence/presence.ts", new Set()],
    ["src/self.ts", new Set(["src/self.ts"])],
  ]);
  assert.deepEqual(cycles(g), [
    ["bench/harness.ts", "bench/report.ts", "bench/measure.ts", "bench/harness.ts"],
    ["src/self.ts", "src/self.ts"],
  ]);
  assert.deepEqual(pathTo(g, "src/client/requests.ts", isServerSide), [
    "src/client/requests.ts",
    "src/protocol/mod.ts",
    "src/presence/presence.ts",
  ]);
  g.get("src/protocol/mod.ts")!.clear();
  g.get("bench/measure.ts")!.delete("bench/harness.ts");
  g.get("src/self.ts")!.clear();
  assert.deepEqual(cycles(g), []);
  assert.equal(pathTo(g, "src/client/requests.ts", isServerSide), null);
});
