/**
 * flood-sma: one client floods SMAs (a window of un-acked SMAs, no other
 * restraint) to reading receivers. Every receiver reads as fast as its
 * generator can; none should be dropped as a slow reader, and an unrelated
 * pair's SPM latency should stay low.
 */
import type { Scenario } from "../scenario.ts";
import { floodFields, runFlood } from "./hostile.ts";

export const floodSma: Scenario = {
  name: "flood-sma",
  groups: ["hostile"],
  profiles: ["full"],
  targets: {
    "flood-sma": {
      text: "no reader dropped, pair p99 ≤ 25 ms",
      bounds: [{ field: "dropped", max: 0 }, { field: "p99_ms", max: 25 }],
    },
  },
  async run(ctx) {
    const { receivers, window, msgSize, pairRate } = ctx.profile.floodSma;
    const r = await runFlood(ctx, "flood-sma", (port) => ({
      mode: "sma",
      target: "chatos",
      ports: [port],
      senders: 1,
      receivers,
      window,
      msgSize,
      inflight: 1e9, // no limit on SMAs not yet delivered everywhere: only the window
    }), pairRate);
    ctx.emit({
      scenario: "flood-sma",
      unit: "deliveries/s",
      ...floodFields(r, pairRate),
      receivers,
      window,
      msg_size: msgSize,
    });
  },
};
