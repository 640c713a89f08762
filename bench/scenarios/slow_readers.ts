/**
 * slow-readers-small and slow-readers-big: recipients that log in and never
 * read, each sent SPMs by its own sender as fast as the sender's window
 * allows, one line per text size. The server must drop them as slow readers
 * once --max-queued-bytes is queued; what they cost must stay within twice
 * that bound for every reader.
 *
 * The target is the growth from the idle server, its users logged in
 * (`idle_growth_ratio`; from the server as started: `started_growth_ratio`), which
 * includes what relaying alone costs however fast recipients read: V8's
 * young generation grows with the message rate (the node's V8 flags cap it:
 * src/ops/node_command.ts). To tell the two apart, the same traffic first
 * runs to recipients that read, on the same server and for as long, and the
 * growth past that run's peak is reported beside it (`growth_ratio`).
 */
import { sleep } from "../../src/lib/async.ts";
import { runLoad } from "../measure.ts";
import { rssKbOf } from "../procs.ts";
import { cpuFields } from "../report.ts";
import type { RunContext, Scenario } from "../scenario.ts";

/** The target: growth from the idle server. */
const IDLE_TARGET = {
  text: "RSS growth from idle ≤ 2× max-queued-bytes × readers",
  bounds: [{ field: "idle_growth_ratio", max: 2 }],
};

export const slowReaders: Scenario = {
  name: "slow-readers",
  groups: ["hostile"],
  profiles: ["full"],
  targets: { "slow-readers-small": IDLE_TARGET, "slow-readers-big": IDLE_TARGET },
  async run(ctx) {
    const { smallSize, bigSize, smallMs } = ctx.profile.slowReaders;
    await oneSize(ctx, "slow-readers-small", smallSize, smallMs);
    await oneSize(ctx, "slow-readers-big", bigSize, ctx.profile.durationMs);
  },
};

async function oneSize(
  ctx: RunContext,
  name: string,
  size: number,
  silentMs: number,
): Promise<void> {
  const { h } = ctx;
  const { readers, window, maxQueuedBytes } = ctx.profile.slowReaders;
  const server = await h.startServer("server", ["--max-queued-bytes", String(maxQueuedBytes)]);
  try {
    const started = rssKbOf(server.child.pid);
    // "Idle" is the node with the run's users logged in, before any message:
    // the first sample (runLoad takes it once every generator is ready). From
    // the node as started it would also count one-time costs no flood causes
    // (the first login's tables, compiled code: ~8 MiB, docs/PERFORMANCE.md).
    let idle = NaN;
    let peak = 0;
    const sample = () => {
      const rss = rssKbOf(server.child.pid);
      if (Number.isNaN(idle)) idle = rss;
      peak = Math.max(peak, rss);
    };
    const load = (silent: boolean, label: string, ms: number) =>
      runLoad(
        h,
        [{
          mode: "spm",
          target: "chatos",
          ports: [server.port],
          pairs: readers,
          window,
          msgSize: size,
          silentRecipients: silent,
        }],
        [server],
        label,
        { sample, window: () => sleep(ms) },
      );
    // As long as the silent run: the heap's growth depends on how long the load lasts.
    await load(false, `${name}: read`, silentMs);
    const readPeak = peak;
    const r = await load(true, name, silentMs);
    const bound = maxQueuedBytes * readers;
    const growth = (peak - readPeak) * 1024;
    const [g] = r.gens;
    ctx.emit({
      scenario: name,
      value: growth / 2 ** 20,
      unit: "MiB RSS past read",
      ceiling: null,
      ratio: null,
      growth_ratio: growth / bound,
      idle_growth_ratio: ((peak - idle) * 1024) / bound,
      started_growth_ratio: ((peak - started) * 1024) / bound,
      rss_started_kb: started,
      rss_idle_kb: idle,
      rss_read_peak_kb: readPeak,
      rss_peak_kb: peak,
      sent_per_s: r.sent,
      readers_dropped: g.refusingSenders,
      ...cpuFields(r),
      readers,
      window,
      msg_size: size,
      max_queued_bytes: maxQueuedBytes,
      silent_s: silentMs / 1000,
    });
  } finally {
    await server.child.stop();
  }
}
