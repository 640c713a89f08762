/**
 * spm-cluster: SPM across a 3-node Redis-backed cluster (each pair split over
 * two nodes) at full speed, then paced at the profile's rate for latency; on
 * a standalone redis-server ("spm-cluster") or a Redis Cluster
 * ("spm-cluster[rc]"). No ceiling is defined; the single-node forwarder is
 * cited for reference.
 */
import { type BenchRedis, clusterGroups, clusterProfiles, lineName } from "../fixtures.ts";
import { runLoad } from "../measure.ts";
import { cpuFields, latency } from "../report.ts";
import { type Scenario, skipAll } from "../scenario.ts";

export function spmClusterOn(redis: BenchRedis): Scenario {
  const max = lineName("spm-cluster", redis);
  const paced = lineName("spm-cluster-10k", redis);
  const scenario: Scenario = {
    name: max,
    groups: clusterGroups(redis),
    profiles: clusterProfiles(redis),
    targets: {
      [max]: { text: "≥ 100k msgs/s", bounds: [{ field: "value", min: 100_000 }] },
      [paced]: {
        text: "p99 ≤ 10 ms at the offered rate",
        bounds: [{ field: "p99_ms", max: 10 }, { field: "offered_share", min: 0.95 }],
      },
    },
    async run(ctx) {
      const { h } = ctx;
      const got = await ctx.fixtures.cluster(redis);
      if ("skipped" in got) return skipAll(ctx, Object.keys(scenario.targets), got.skipped);
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
      h.console.progress(`${max}: max rate`);
      const o = await run(0, max);
      ctx.emit({
        scenario: max,
        value: o.rate,
        unit: "msgs/s",
        ceiling: null,
        ratio: null,
        redis,
        single_node_ceiling: ctx.measured.get("spm.ceiling"),
        ...latency(o.hist),
        ...cpuFields(o),
        redis_cpu_s: o.otherCpu,
        redis_servers: redisPids().length,
        pairs,
        window,
        errors: o.errors || undefined,
      });
      h.console.progress(`${paced}: paced at ${rate} msgs/s`);
      const p = await run(rate, paced);
      ctx.emit({
        scenario: paced,
        value: p.rate,
        unit: "msgs/s",
        ceiling: null,
        ratio: null,
        redis,
        ...latency(p.hist),
        offered: rate,
        offered_share: p.rate / rate,
        ...cpuFields(p),
        redis_cpu_s: p.otherCpu,
        redis_servers: redisPids().length,
        errors: p.errors || undefined,
      });
    },
  };
  return scenario;
}
