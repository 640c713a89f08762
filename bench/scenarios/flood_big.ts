/**
 * flood-big: clients send the largest SPMs a STRING allows to reading
 * recipients, as fast as their windows let them; an unrelated pair's SPM
 * latency should stay low.
 */
import type { Scenario } from "../scenario.ts";
import { floodFields, runFlood } from "./hostile.ts";

export const floodBig: Scenario = {
  name: "flood-big",
  groups: ["hostile"],
  profiles: ["full"],
  targets: {
    "flood-big": { text: "pair p99 ≤ 25 ms", bounds: [{ field: "p99_ms", max: 25 }] },
  },
  async run(ctx) {
    const { clients, window, msgSize, pairRate } = ctx.profile.floodBig;
    const r = await runFlood(ctx, "flood-big", (port) => ({
      mode: "spm",
      target: "chatos",
      ports: [port],
      pairs: clients,
      window,
      msgSize,
    }), pairRate);
    ctx.emit({
      scenario: "flood-big",
      unit: "msgs/s",
      ...floodFields(r, pairRate),
      flood_mb_per_s: (r.gens[0].rate * msgSize) / 1e6,
      clients,
      window,
      msg_size: msgSize,
    });
  },
};
