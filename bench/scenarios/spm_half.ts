/**
 * spm-half: SPM latency with every sender paced (1 ms tick) to half of ours'
 * maximum rate (as spm measured it this run, or measured here first); the
 * forwarder's latency at the same rate beside it in the full profile.
 */
import type { Proc } from "../harness.ts";
import { type LoadResult, runLoad } from "../measure.ts";
import { cpuFields, latency, ms } from "../report.ts";
import type { RunContext, Scenario } from "../scenario.ts";

export const spmHalf: Scenario = {
  name: "spm-half",
  groups: [],
  profiles: ["full", "quick", "smoke"],
  targets: {
    "spm-half": { text: "p99 ≤ 5 ms at half max", bounds: [{ field: "p99_ms", max: 5 }] },
  },
  async run(ctx) {
    const { h } = ctx;
    const fwd = ctx.profile.ceilingHalf ? await h.startCeiling("forwarder") : null;
    const server = await h.startServer("server");
    try {
      const run = (p: Proc, target: "chatos" | "forwarder", rate: number) =>
        spmRun(ctx, p, target, rate);
      let max = ctx.measured.get("spm.ours");
      if (max === undefined) {
        h.console.progress("spm-half: measuring chatos' maximum first");
        max = (await run(server, "chatos", 0)).rate;
      }
      const half = Math.round(max / 2);
      h.console.progress(`spm-half: chatos paced at ${half} msgs/s`);
      const o = await run(server, "chatos", half);
      let c: LoadResult | null = null;
      if (fwd) {
        h.console.progress(`spm-half: forwarder paced at ${half} msgs/s`);
        c = await run(fwd, "forwarder", half);
      }
      ctx.emit({
        scenario: "spm-half",
        value: o.rate,
        unit: "msgs/s",
        ceiling: null,
        ratio: null,
        ...latency(o.hist),
        ceiling_p50_ms: c ? ms(c.hist.quantile(0.5)) : undefined,
        ceiling_p99_ms: c ? ms(c.hist.quantile(0.99)) : undefined,
        offered: half,
        ...cpuFields(o),
      });
    } finally {
      await Promise.all([fwd?.child.stop(), server.child.stop()]);
    }
  },
};

function spmRun(ctx: RunContext, p: Proc, target: "chatos" | "forwarder", rate: number) {
  const { pairs, window, msgSize } = ctx.profile.spm;
  const cfg = { mode: "spm" as const, target, ports: [p.port], pairs, window, msgSize, rate };
  return runLoad(ctx.h, [cfg], [p], "spm-half");
}
