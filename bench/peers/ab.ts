/**
 * A/B of server trees at a peer shape, in one session: each variant is a
 * server root (a `git worktree` of an old commit, or a patched copy of src/)
 * and optional V8 flags; every round runs each variant once, the order
 * rotated, and the figure is the server's CPU per delivered message (per
 * login for `login`, with RSS per idle session). Reports each variant's
 * median and the median of its per-round ratios to the first variant.
 *
 *   deno run -A bench/peers/ab.ts --shape pm [--rounds 3] [--duration 4] \
 *     now=. old=/tmp/old1126 uncapped=.:--max-semi-space-size=32
 *
 * A variant is NAME=ROOT[:V8FLAGS]; ROOT holds src/server/main.ts and takes the
 * bench's server flags (an old tree may need its strict flag parsing relaxed).
 */
import { parseArgs } from "node:util";
import { Harness } from "../harness.ts";
import { runLoad } from "../measure.ts";
import { PROFILES, withOverrides } from "../profiles.ts";
import { Console } from "../console.ts";
import { connectRun } from "../scenarios/connect.ts";
import { genConfig, medianIndex, type MsgShape, perMessageUs } from "../scenarios/peers.ts";
import type { RunContext } from "../scenario.ts";

const { values: opt, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    shape: { type: "string", default: "pm" },
    rounds: { type: "string", default: "3" },
    duration: { type: "string" },
  },
});
const SHAPES: Record<string, MsgShape | "login"> = {
  pm: "peers-pm",
  room: "peers-room",
  bigroom: "peers-bigroom",
  login: "login",
};
const shape = SHAPES[opt.shape];
if (!shape || positionals.length < 2) {
  console.error("usage: ab.ts --shape pm|room|bigroom|login NAME=ROOT[:V8FLAGS] NAME=ROOT...");
  Deno.exit(2);
}
const profile = withOverrides(PROFILES.full, {
  rounds: Number(opt.rounds),
  durationS: opt.duration === undefined ? undefined : Number(opt.duration),
});
const out = new Console();
const variants = positionals.map((v) => {
  const eq = v.indexOf("=");
  const colon = v.indexOf(":", eq);
  const name = v.slice(0, eq);
  const root = v.slice(eq + 1, colon < 0 ? undefined : colon);
  const v8 = colon < 0 ? undefined : v.slice(colon + 1);
  const serverRoot = Deno.realPathSync(root).replace(/\/?$/, "/");
  return { name, h: new Harness(profile, out, { serverRoot, serverV8Flags: v8 }) };
});
const ctxOf = (h: Harness) => ({ profile, h }) as unknown as RunContext;

/** One measured run of a variant: [figure, extra] (login: µs/login and KiB/idle session). */
async function measure(h: Harness, label: string): Promise<[number, number]> {
  const server = await h.startServer(label);
  try {
    if (shape === "login") {
      const p = profile.peers;
      const sizes = { sessions: p.logins, gens: 2, concurrency: p.loginsAtOnce / 2 };
      const c = await connectRun(ctxOf(h), server, "chatos", sizes);
      return [(c.serverCpu / c.logins) * 1e6, (c.rss1 - c.rss0) / c.logins];
    }
    const r = await runLoad(h, [genConfig(profile, shape, "chatos", server.port)], [server], label);
    if (r.errors > 0) throw new Error(`${label}: ${r.errors} errors, first: ${r.firstError}`);
    return [perMessageUs(r), r.rate];
  } finally {
    await server.child.stop();
  }
}

const runs = variants.map(() => [] as [number, number][]);
try {
  for (let r = 0; r < profile.rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (k + r) % variants.length;
      runs[i].push(await measure(variants[i].h, `${variants[i].name} round ${r + 1}`));
    }
  }
} finally {
  await Promise.all(variants.map((v) => v.h.children.stop(1000)));
}
const unit = shape === "login" ? ["µs CPU/login", "KiB/idle"] : ["µs CPU/msg", "deliveries/s"];
out.note(
  `\n${opt.shape}, ${profile.rounds} rounds (ratio: median of per-round ratios to ${
    variants[0].name
  })`,
);
out.note(`| variant | ${unit[0]} (median) | rounds | ratio | ${unit[1]} |`);
out.note("| --- | --- | --- | --- | --- |");
for (let i = 0; i < variants.length; i++) {
  const xs = runs[i].map((x) => x[0]);
  const m = runs[i][medianIndex(xs)];
  const ratios = xs.map((x, r) => x / runs[0][r][0]);
  const ratio = ratios[medianIndex(ratios)];
  const extra = shape === "login" ? m[1].toFixed(2) : Math.round(m[1]).toLocaleString("en");
  out.note(
    `| ${variants[i].name} | ${m[0].toFixed(3)} | ${xs.map((x) => x.toFixed(2)).join(" ")} | ` +
      `${ratio.toFixed(3)} | ${extra} |`,
  );
}
Deno.exit(0);
