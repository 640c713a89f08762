/** spm: SPM relay + ack at full speed, ours against the forwarder, alternating rounds. */
import { alternate, runLoad } from "../measure.ts";
import { comparedRates } from "../report.ts";
import type { Scenario } from "../scenario.ts";

export const spm: Scenario = {
  name: "spm",
  groups: [],
  profiles: ["full", "quick", "smoke"],
  targets: { spm: { text: "≥ 0.4× forwarder", bounds: [{ field: "ratio", min: 0.4 }] } },
  async run(ctx) {
    const { h } = ctx;
    const { pairs, window, msgSize } = ctx.profile.spm;
    const fwd = await h.startCeiling("forwarder");
    const server = await h.startServer("server");
    try {
      const base = { mode: "spm" as const, pairs, window, msgSize };
      const cmp = await alternate(
        h,
        "spm",
        () => runLoad(h, [{ ...base, target: "forwarder", ports: [fwd.port] }], [fwd], "spm"),
        () => runLoad(h, [{ ...base, target: "chatos", ports: [server.port] }], [server], "spm"),
        (r) => r.rate,
      );
      ctx.measured.set("spm.ceiling", cmp.c.rate);
      ctx.measured.set("spm.ours", cmp.o.rate);
      ctx.emit({
        scenario: "spm",
        unit: "msgs/s",
        ...comparedRates(cmp),
        pairs,
        window,
        msg_size: msgSize,
        errors: cmp.o.errors || undefined,
      });
    } finally {
      await Promise.all([fwd.child.stop(), server.child.stop()]);
    }
  },
};
