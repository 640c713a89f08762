/**
 * slow-readers: recipients that log in and never read, each sent SPMs by its
 * own sender (small and large texts, alternately per pair) as fast as the
 * sender's window allows. The server must drop them as slow readers once
 * --max-queued-bytes is queued; its RSS must not grow past twice that bound
 * for every reader.
 */
import { runLoad } from "../measure.ts";
import { rssKbOf } from "../procs.ts";
import { cpuFields } from "../report.ts";
import type { Scenario } from "../scenario.ts";

export const slowReaders: Scenario = {
  name: "slow-readers",
  groups: ["hostile"],
  profiles: ["full"],
  targets: {
    "slow-readers": {
      text: "RSS growth ≤ 2× max-queued-bytes × readers",
      bounds: [{ field: "growth_ratio", max: 2 }],
    },
  },
  async run(ctx) {
    const { h } = ctx;
    const { readers, window, smallSize, bigSize, maxQueuedBytes } = ctx.profile.slowReaders;
    const server = await h.startServer("server", ["--max-queued-bytes", String(maxQueuedBytes)]);
    try {
      let before = NaN;
      let peak = 0;
      const sample = () => {
        const kb = rssKbOf(server.child.pid);
        if (Number.isNaN(before)) before = kb;
        peak = Math.max(peak, kb);
      };
      const r = await runLoad(
        h,
        [{
          mode: "spm",
          target: "chatos",
          ports: [server.port],
          pairs: readers,
          window,
          msgSizes: [smallSize, bigSize],
          silentRecipients: true,
        }],
        [server],
        "slow-readers",
        { sample },
      );
      const after = rssKbOf(server.child.pid);
      const growthBytes = (peak - before) * 1024;
      const [g] = r.gens;
      ctx.emit({
        scenario: "slow-readers",
        value: growthBytes / 2 ** 20,
        unit: "MiB RSS growth",
        ceiling: null,
        ratio: null,
        growth_ratio: growthBytes / (maxQueuedBytes * readers),
        rss_before_kb: before,
        rss_peak_kb: peak,
        rss_after_kb: after,
        sent_per_s: r.sent,
        readers_dropped: g.refusingSenders,
        refused: g.refused,
        ...cpuFields(r),
        readers,
        window,
        msg_sizes: [smallSize, bigSize],
        max_queued_bytes: maxQueuedBytes,
      });
    } finally {
      await server.child.stop();
    }
  },
};
