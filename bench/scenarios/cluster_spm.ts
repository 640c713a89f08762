/**
 * spm-cluster: SPM across a 3-node Redis-backed cluster (each pair split over
 * two nodes) at full speed, then paced at the profile's rate for latency.
 * No ceiling is defined; the single-node forwarder is cited for reference.
 */
import { runLoad } from "../measure.ts";
import { cpuFields, latency } from "../report.ts";
import { type Scenario, skipAll } from "../scenario.ts";

export const spmCluster: Scenario = {
  name: "spm-cluster",
  groups: ["cluster"],
  profiles: ["full", "quick"],
  targets: {
    "spm-cluster": { text: "≥ 100k msgs/s", bounds: [{ field: "value", min: 100_000 }] },
    "spm-cluster-10k": {
      text: "p99 ≤ 10 ms at the offered rate",
      bounds: [{ field: "p99_ms", max: 10 }, { field: "offered_share", min: 0.95 }],
    },
  },
  async run(ctx) {
    const { h } = ctx;
    const got = await ctx.fixtures.cluster();
    if ("skipped" in got) return skipAll(ctx, Object.keys(spmCluster.targets), got.skipped);
    const { nodes, ports, redisPids } = got.cluster;
    const { pairs, window, rate } = ctx.profile.cluster;
    const msgSize = ctx.profile.spm.msgSize;
    const run = (r: number, label: string) =>
      runLoad(
        h,
        [{ mode: "spm", target: "chatos", ports, pairs, window, msgSize, rate: r }],
        nodes,
        label,
        { others: redisPids },
      );
    h.console.progress("spm-cluster: max rate");
    const o = await run(0, "spm-cluster");
    ctx.emit({
      scenario: "spm-cluster",
      value: o.rate,
      unit: "msgs/s",
      ceiling: null,
      ratio: null,
      single_node_ceiling: ctx.measured.get("spm.ceiling"),
      ...latency(o.hist),
      ...cpuFields(o),
      redis_cpu_s: o.otherCpu,
      pairs,
      window,
      errors: o.errors || undefined,
    });
    h.console.progress(`spm-cluster-10k: paced at ${rate} msgs/s`);
    const p = await run(rate, "spm-cluster-10k");
    ctx.emit({
      scenario: "spm-cluster-10k",
      value: p.rate,
      unit: "msgs/s",
      ceiling: null,
      ratio: null,
      ...latency(p.hist),
      offered: rate,
      offered_share: p.rate / rate,
      ...cpuFields(p),
      redis_cpu_s: p.otherCpu,
      errors: p.errors || undefined,
    });
  },
};
