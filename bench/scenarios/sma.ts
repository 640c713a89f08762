/** sma: SMA fan-out to every logged-in user, ours against the broadcaster, alternating rounds. */
import type { Proc } from "../harness.ts";
import { alternate, runLoad } from "../measure.ts";
import { comparedRates } from "../report.ts";
import type { Scenario } from "../scenario.ts";

export const sma: Scenario = {
  name: "sma",
  groups: [],
  profiles: ["full", "quick", "smoke"],
  targets: { sma: { text: "≥ 0.5× broadcaster", bounds: [{ field: "ratio", min: 0.5 }] } },
  async run(ctx) {
    const { h } = ctx;
    const { receivers, senders, window, msgSize } = ctx.profile.sma;
    const bc = await h.startCeiling("broadcaster");
    const server = await h.startServer("server");
    try {
      const base = { mode: "sma" as const, receivers, senders, window, msgSize };
      const run = (p: Proc, target: "chatos" | "broadcaster") =>
        runLoad(h, [{ ...base, target, ports: [p.port] }], [p], "sma");
      const cmp = await alternate(
        h,
        "sma",
        () => run(bc, "broadcaster"),
        () => run(server, "chatos"),
        (r) => r.rate,
      );
      ctx.measured.set("sma.ceiling", cmp.c.rate);
      ctx.emit({
        scenario: "sma",
        unit: "deliveries/s",
        ...comparedRates(cmp),
        receivers,
        senders,
        sma_per_s: cmp.o.sent,
        errors: cmp.o.errors || undefined,
      });
    } finally {
      await Promise.all([bc.child.stop(), server.child.stop()]);
    }
  },
};
