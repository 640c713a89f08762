/**
 * What the flood scenarios share: a fresh server, the flood in one generator
 * and, beside it in its own generator process, an unrelated pair of users
 * chatting at a modest paced rate, whose SPM latency (send to delivery) says
 * whether the flood starves everyone else.
 */
import type { GenConfig } from "../gen/config.ts";
import { FLOOD_CONTROL } from "../harness.ts";
import { type LoadResult, runLoad } from "../measure.ts";
import { cpuFields, ms } from "../report.ts";
import type { RunContext } from "../scenario.ts";

type Config = Omit<GenConfig, "gen">;

/** Runs `flood(port)` beside the paced pair on a server of its own. */
export async function runFlood(
  ctx: RunContext,
  label: string,
  flood: (port: number) => Config,
  pairRate: number,
): Promise<LoadResult> {
  const server = await ctx.h.startServer("server", FLOOD_CONTROL);
  try {
    // A small window: the schedule, not the acks, sets the pair's pace even when latency spikes.
    const pair: Config = {
      mode: "spm",
      target: "chatos",
      ports: [server.port],
      pairs: 1,
      window: 4,
      msgSize: 32,
      rate: pairRate,
    };
    return await runLoad(ctx.h, [flood(server.port), pair], [server], label);
  } finally {
    await server.child.stop();
  }
}

/** A flood line's common fields: the flood's rate is the value, the pair's latency p50/p99. */
export function floodFields(r: LoadResult, pairRate: number) {
  const [flood, pair] = r.gens;
  return {
    value: flood.rate,
    ceiling: null,
    ratio: null,
    p50_ms: ms(pair.hist.quantile(0.5)),
    p99_ms: ms(pair.hist.quantile(0.99)),
    max_ms: ms(pair.hist.max),
    pair_rate: pair.rate,
    pair_offered: pairRate,
    pair_errors: pair.errors || undefined,
    pair_first_error: pair.firstError,
    /** Receiving connections of the flood the server closed. */
    dropped: flood.ended,
    flood_p99_ms: ms(flood.hist.quantile(0.99)),
    flood_errors: flood.errors || undefined,
    flood_first_error: flood.firstError,
    ...cpuFields(r),
  };
}
