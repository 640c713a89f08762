/**
 * connect: how fast sessions log in, and the RSS each idle one costs, next to
 * the minimal broadcaster (CR → ERROR 1, one pending 1 KiB read per socket,
 * the server's idle read size) holding as many.
 */
import { sleep } from "../../src/lib/async.ts";
import type { Target } from "../gen/config.ts";
import type { Proc } from "../harness.ts";
import { cpuOf, machineCpu, rssKbOf } from "../procs.ts";
import type { RunContext, Scenario } from "../scenario.ts";

export interface ConnectRun {
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

/** Logs in the profile's sessions (or `sizes`), idle, then reads the target's RSS. */
export async function connectRun(
  ctx: RunContext,
  target: Proc,
  kind: Target,
  sizes = ctx.profile.connect,
): Promise<ConnectRun> {
  const { h } = ctx;
  const { sessions, gens: nGens, concurrency } = sizes;
  await sleep(300);
  const rss0 = rssKbOf(target.child.pid);
  const per = Math.ceil(sessions / nGens);
  const gens = Array.from(
    { length: nGens },
    () =>
      h.spawnGen({ mode: "connect", target: kind, ports: [target.port], count: per, concurrency }),
  );
  const genCpu = () => gens.reduce((s, g) => s + cpuOf(g.pid), 0);
  try {
    await Promise.all(gens.map((g) => g.next("ready", 30_000)));
    const s0 = cpuOf(target.child.pid), g0 = genCpu(), m0 = machineCpu();
    h.console.progress(`connect (${kind}): logging in ${per * nGens} sessions`);
    for (const g of gens) await g.send("go");
    const done = await Promise.all(gens.map((g) => g.next("done", 120_000)));
    const s1 = cpuOf(target.child.pid), g1 = genCpu(), m1 = machineCpu();
    const logins = done.reduce((s, e) => s + (e.logins as number), 0);
    const failures = done.reduce((s, e) => s + (e.failures as number), 0);
    const elapsed = Math.max(...done.map((e) => e.elapsed_s as number));
    const firstError = done.map((e) => e.first_error).find((x) => x);
    if (failures > 0) {
      h.console.note(`  ! connect: ${failures} failed logins, first: ${firstError}`);
    }
    h.console.progress(`connect (${kind}): ${logins} sessions idle, letting RSS settle`);
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

export const connect: Scenario = {
  name: "connect",
  groups: [],
  profiles: ["full", "quick", "smoke"],
  targets: {
    connect: {
      text: "≥ 5000 logins/s, all 19k in",
      bounds: [{ field: "value", min: 5000 }, { field: "sessions", min: 19_000 }],
    },
    // Lower is better here: the "ceiling" is the minimal server's floor.
    "connect-rss": {
      text: "≤ 8 KiB/session at 19k",
      bounds: [{ field: "value", max: 8 }, { field: "sessions", min: 19_000 }],
    },
  },
  async run(ctx) {
    const floor = await ctx.h.startCeiling("broadcaster", ["--read-buffer", "1024"]);
    let c: ConnectRun;
    try {
      c = await connectRun(ctx, floor, "broadcaster");
    } finally {
      await floor.child.stop();
    }
    const server = await ctx.h.startServer("server");
    let o: ConnectRun;
    try {
      o = await connectRun(ctx, server, "chatos");
    } finally {
      await server.child.stop();
    }
    ctx.emit({
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
    });
    const per = (r: ConnectRun) => (r.rss1 - r.rss0) / Math.max(1, r.logins);
    ctx.emit({
      scenario: "connect-rss",
      value: per(o),
      unit: "KiB/session",
      ceiling: per(c),
      ratio: per(o) / per(c),
      sessions: o.logins,
      rss_before_kb: o.rss0,
      rss_after_kb: o.rss1,
      ceiling_sessions: c.logins,
    });
  },
};
