/** link: bulk bytes one way through a private link, ours against the forwarder. */
import type { Proc } from "../harness.ts";
import { alternate, runLoad } from "../measure.ts";
import { round, sideBySideCpu } from "../report.ts";
import type { Scenario } from "../scenario.ts";

const mb = (x: number) => x / 1e6;

export const link: Scenario = {
  name: "link",
  groups: [],
  profiles: ["full", "quick", "smoke"],
  targets: { link: { text: "≥ 0.8× forwarder", bounds: [{ field: "ratio", min: 0.8 }] } },
  async run(ctx) {
    const { h } = ctx;
    const { chunk } = ctx.profile.link;
    const fwd = await h.startCeiling("forwarder");
    const server = await h.startServer("server");
    try {
      const run = (p: Proc, target: "chatos" | "forwarder") =>
        runLoad(h, [{ mode: "link", target, ports: [p.port], chunk }], [p], "link");
      const cmp = await alternate(
        h,
        "link",
        () => run(fwd, "forwarder"),
        () => run(server, "chatos"),
        (r) => r.bytesRate,
      );
      ctx.emit({
        scenario: "link",
        value: mb(cmp.o.bytesRate),
        unit: "MB/s",
        ceiling: mb(cmp.c.bytesRate),
        ratio: cmp.ratio,
        ratio_rounds: cmp.rAll.map((x) => round(x, 3)),
        ...sideBySideCpu(cmp.o, cmp.c),
        rounds: cmp.oAll.map((x) => round(mb(x), 0)),
        ceiling_rounds: cmp.cAll.map((x) => round(mb(x), 0)),
        chunk,
        errors: cmp.o.errors || undefined,
      });
    } finally {
      await Promise.all([fwd.child.stop(), server.child.stop()]);
    }
  },
};
