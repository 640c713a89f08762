/** sma-cluster: SMA fan-out with receivers and senders spread over the 3-node cluster. */
import { runLoad } from "../measure.ts";
import { cpuFields, latency } from "../report.ts";
import { type Scenario, skipAll } from "../scenario.ts";

export const smaCluster: Scenario = {
  name: "sma-cluster",
  groups: ["cluster"],
  profiles: ["full", "quick"],
  targets: { "sma-cluster": { text: "(none; compare with sma)", bounds: [] } },
  async run(ctx) {
    const got = await ctx.fixtures.cluster();
    if ("skipped" in got) return skipAll(ctx, Object.keys(smaCluster.targets), got.skipped);
    const { nodes, ports, redisPids } = got.cluster;
    const { receivers, senders } = ctx.profile.cluster;
    const { window, msgSize } = ctx.profile.sma;
    ctx.h.console.progress("sma-cluster");
    const s = await runLoad(
      ctx.h,
      [{ mode: "sma", target: "chatos", ports, receivers, senders, window, msgSize }],
      nodes,
      "sma-cluster",
      { others: redisPids },
    );
    ctx.emit({
      scenario: "sma-cluster",
      value: s.rate,
      unit: "deliveries/s",
      ceiling: null,
      ratio: null,
      single_node_ceiling: ctx.measured.get("sma.ceiling"),
      ...latency(s.hist),
      ...cpuFields(s),
      redis_cpu_s: s.otherCpu,
      receivers,
      senders,
      sma_per_s: s.sent,
      errors: s.errors || undefined,
    });
  },
};
