/**
 * cross-node: what a message costs when its two users are on different nodes, next to the same
 * load on one node, in one run (issue 20). 20 pairs × window 1 (latency-bound): first every pair
 * on one standalone node, then each pair split over two of three nodes sharing a Redis (one
 * redis-server, or a Redis Cluster); the cost is the CPU of all nodes together per message, and
 * Redis' CPU per message. Then the split load paced at 10k msgs/s, for its latency.
 */
import { type BenchRedis, clusterGroups, lineName } from "../fixtures.ts";
import { type LoadResult, runLoad } from "../measure.ts";
import { cpuFields, latency, round } from "../report.ts";
import { type Scenario, skipAll } from "../scenario.ts";

/** µs of CPU per message. */
const perMsg = (cpuS: number, o: LoadResult) =>
  o.rate > 0 ? (cpuS * 1e6) / (o.rate * o.elapsed) : null;

export function crossNodeOn(redis: BenchRedis): Scenario {
  const main = lineName("cross-node", redis);
  const paced = lineName("cross-node-10k", redis);
  const scenario: Scenario = {
    name: main,
    groups: [...clusterGroups(redis), "cross"],
    // Full runs only: the figures need the whole warm-up and window (and --quick stays short).
    profiles: ["full"],
    targets: {
      [main]: {
        text: "node CPU/msg ≤ 2.5× one node's; Redis ≤ 5 µs/msg; p99 ≤ 3 ms",
        bounds: [
          { field: "ratio", max: 2.5 },
          { field: "redis_us_per_msg", max: 5 },
          { field: "p99_ms", max: 3 },
        ],
      },
      [paced]: {
        text: "p99 ≤ 2 ms at 10k msgs/s",
        bounds: [{ field: "p99_ms", max: 2 }, { field: "offered_share", min: 0.95 }],
      },
    },
    async run(ctx) {
      const { h } = ctx;
      const { pairs, window, msgSize, rate } = ctx.profile.crossNode;
      const base = { mode: "spm" as const, target: "chatos" as const, pairs, window, msgSize };
      // The same load on one node first, started beside the cluster (so both see the same machine).
      const got = await ctx.fixtures.cluster(redis);
      if ("skipped" in got) return skipAll(ctx, Object.keys(scenario.targets), got.skipped);
      const { nodes, ports, redisPids } = got.cluster;
      const solo = await h.startServer(`solo${redis === "single" ? "" : "[rc]"}`);
      let local: LoadResult;
      try {
        h.console.progress(`${main}: one node`);
        local = await runLoad(h, [{ ...base, ports: [solo.port], rate: 0 }], [solo], main);
      } finally {
        await solo.child.stop();
      }
      h.console.progress(`${main}: across nodes`);
      const cross = await runLoad(h, [{ ...base, ports, rate: 0 }], nodes, main, {
        others: redisPids,
      });
      const localUs = perMsg(local.serverCpu, local);
      const crossUs = perMsg(cross.serverCpu, cross);
      const redisUs = perMsg(cross.otherCpu, cross);
      ctx.emit({
        scenario: main,
        value: cross.rate,
        unit: "msgs/s",
        ceiling: null,
        ratio: localUs && crossUs ? round(crossUs / localUs, 2) : null,
        redis,
        ...latency(cross.hist),
        node_us_per_msg: crossUs === null ? null : round(crossUs, 1),
        local_us_per_msg: localUs === null ? null : round(localUs, 1),
        redis_us_per_msg: redisUs === null ? null : round(redisUs, 1),
        local_rate: round(local.rate, 0),
        local_p99_ms: latency(local.hist).p99_ms,
        ...cpuFields(cross),
        redis_cpu_s: cross.otherCpu,
        pairs,
        window,
        errors: cross.errors || undefined,
      });
      h.console.progress(`${paced}: paced at ${rate} msgs/s`);
      const p = await runLoad(h, [{ ...base, ports, rate }], nodes, paced, { others: redisPids });
      const pacedUs = perMsg(p.serverCpu, p);
      const pacedRedisUs = perMsg(p.otherCpu, p);
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
        node_us_per_msg: pacedUs === null ? null : round(pacedUs, 1),
        redis_us_per_msg: pacedRedisUs === null ? null : round(pacedRedisUs, 1),
        ...cpuFields(p),
        redis_cpu_s: p.otherCpu,
        errors: p.errors || undefined,
      });
    },
  };
  return scenario;
}
