/**
 * sma-cluster: SMA fan-out with receivers and senders spread over the 3-node
 * cluster, on a standalone redis-server ("sma-cluster") or a Redis Cluster
 * ("sma-cluster[rc]").
 */
import { type BenchRedis, clusterGroups, clusterProfiles, lineName } from "../fixtures.ts";
import { runLoad } from "../measure.ts";
import { cpuFields, latency } from "../report.ts";
import { type Scenario, skipAll } from "../scenario.ts";

export function smaClusterOn(redis: BenchRedis): Scenario {
  const name = lineName("sma-cluster", redis);
  const scenario: Scenario = {
    name,
    groups: clusterGroups(redis),
    profiles: clusterProfiles(redis),
    targets: { [name]: { text: "(none; compare with sma)", bounds: [] } },
    async run(ctx) {
      const got = await ctx.fixtures.cluster(redis);
      if ("skipped" in got) return skipAll(ctx, Object.keys(scenario.targets), got.skipped);
      const { nodes, ports, redisPids } = got.cluster;
      const { receivers, senders } = ctx.profile.cluster;
      const { window, msgSize } = ctx.profile.sma;
      ctx.h.console.progress(name);
      const s = await runLoad(
        ctx.h,
        [{ mode: "sma", target: "chatos", ports, receivers, senders, window, msgSize }],
        nodes,
        name,
        { others: redisPids },
      );
      ctx.emit({
        scenario: name,
        value: s.rate,
        unit: "deliveries/s",
        ceiling: null,
        ratio: null,
        redis,
        single_node_ceiling: ctx.measured.get("sma.ceiling"),
        ...latency(s.hist),
        ...cpuFields(s),
        redis_cpu_s: s.otherCpu,
        redis_servers: redisPids().length,
        receivers,
        senders,
        sma_per_s: s.sent,
        errors: s.errors || undefined,
      });
    },
  };
  return scenario;
}
