/**
 * redis-stop (issue 9): what a node holds while its Redis hangs under a flood.
 * A private 3-node cluster on a standalone redis-server; every flooding
 * sender is on node 0 and sends SPMs of the profile's size (32 KiB), each
 * keeping a window un-acked. Half send to recipients on node 1 (cross-node,
 * through Redis) from before the stop to the end. Mid-window the redis-server
 * is stopped (SIGSTOP) for `stopMs`, then continued, and the flood goes on a
 * while. Once it is stopped, one user on node 0 sends TCPAsks, which wait on
 * Redis and hold its session's mailbox, and the other half start sending to
 * that user: a local send is acked at once, so only the server bounds what
 * waits for it. The value is the largest peak RSS growth of a node (node 0
 * holds the mailbox, node 1 gets what Redis relays once it continues) from
 * just before the stop to the end of the window; the line says how many sends
 * were acked and refused, and what became of the waiting user.
 */
import { sleep, writeAll } from "../../src/lib/async.ts";
import { closeQuietly, errorMessage } from "../../src/lib/errors.ts";
import { dial, login, readLoop } from "../gen/net.ts";
import { FLOOD_CONTROL } from "../harness.ts";
import { runLoad } from "../measure.ts";
import { type Child, rssKbOf } from "../procs.ts";
import { cpuFields } from "../report.ts";
import { type Scenario, skipAll } from "../scenario.ts";
import { frame, FrameScanner, OP_ERROR, OP_SPM, OP_TCPASK } from "../wire.ts";

const NAME = "redis-stop";
/** Flooding before the stop, to measure RSS from a steady state. */
const LEAD_MS = 500;
/** Flooding after Redis continues: whatever piled up drains (or does not). */
const SETTLE_MS = 2000;
/** The waiting user asks again this often while Redis is stopped (an ask times out in ~1 s). */
const ASK_EVERY_MS = 200;
/** Between the first ask and the local flood: the ask must be in the mailbox first. */
const ASK_LEAD_MS = 100;
const WAITER = "waiter";

export const redisStop: Scenario = {
  name: NAME,
  groups: ["cluster", "hostile"],
  profiles: ["full"],
  targets: {
    [NAME]: { text: "node RSS growth ≤ 64 MiB", bounds: [{ field: "value", max: 64 }] },
  },
  async run(ctx) {
    const { h } = ctx;
    const { pairs, window, msgSize, stopMs } = ctx.profile.redisStop;
    // A hostile scenario: the server's default flood control is on (bench/harness.ts).
    const started = await ctx.fixtures.fresh("single", FLOOD_CONTROL);
    let waiter: Waiter | null = null;
    let localGen: Child | null = null;
    let redisPid: number | null = null;
    let stopped = false;
    try {
      if ("skipped" in started.got) return skipAll(ctx, [NAME], started.got.skipped);
      const { nodes, ports, redisProcess } = started.got.cluster;
      redisPid = redisProcess?.pid ?? null;
      if (redisPid === null) throw new Error("the cluster's redis-server has no pid");
      const pid = redisPid;
      const flood = { mode: "spm", target: "chatos", pairs, window, msgSize } as const;
      const w = waiter = await Waiter.login(ports[0], WAITER);
      const local = localGen = h.spawnGen({ ...flood, ports: [ports[0]], to: WAITER });
      await local.next("ready", 60_000);
      const rss = nodes.map(() => ({ idle: NaN, before: NaN, peak: NaN }));
      let stalling = false;
      const sample = () => {
        nodes.forEach((n, i) => {
          const kb = rssKbOf(n.child.pid);
          if (Number.isNaN(rss[i].idle)) rss[i].idle = kb;
          if (stalling) rss[i].peak = Math.max(rss[i].peak, kb);
        });
      };
      let localResult: Record<string, unknown> = {};
      const stall = async () => {
        await sleep(LEAD_MS);
        nodes.forEach((n, i) => rss[i].peak = rss[i].before = rssKbOf(n.child.pid));
        stalling = true;
        h.console.progress(`${NAME}: redis-server stopped for ${stopMs / 1000} s`);
        Deno.kill(pid, "SIGSTOP");
        stopped = true;
        const asking = w.keepAsking("nobody", ASK_EVERY_MS);
        await sleep(ASK_LEAD_MS);
        await local.send("go");
        await sleep(stopMs - ASK_LEAD_MS);
        Deno.kill(pid, "SIGCONT");
        stopped = false;
        clearInterval(asking);
        h.console.progress(`${NAME}: redis-server continued; ${SETTLE_MS / 1000} s more`);
        await sleep(SETTLE_MS);
        sample();
        await local.send("stop");
        localResult = await local.next("result", 20_000);
      };
      const r = await runLoad(
        h,
        [{ ...flood, ports: [ports[0]], recipientPorts: [ports[1]] }],
        nodes,
        NAME,
        { sample, window: stall },
      );
      const growth = rss.map((x) => ((x.peak - x.before) * 1024) / 2 ** 20);
      const worst = growth.indexOf(Math.max(...growth));
      const [cross] = r.gens;
      const lr = (k: string) => localResult[k] as number | undefined;
      ctx.emit({
        scenario: NAME,
        value: growth[worst],
        unit: "MiB RSS growth",
        ceiling: null,
        ratio: null,
        redis: "single",
        worst_node: worst,
        rss_idle_kb: rss[worst].idle,
        rss_before_kb: rss[worst].before,
        rss_peak_kb: rss[worst].peak,
        growth_mib_by_node: growth,
        cross_sent: cross.sent,
        cross_acked: cross.acked,
        cross_refused: cross.refused,
        cross_delivered: cross.delivered,
        cross_ended: cross.ended,
        local_sent: lr("sent"),
        local_acked: lr("acked"),
        local_refused: lr("refused"),
        waiter_received: w.received,
        waiter_asks: w.asks,
        waiter_answers: w.answers,
        waiter_ended: w.ended ?? undefined,
        ...cpuFields(r),
        stop_s: stopMs / 1000,
        pairs,
        window,
        msg_size: msgSize,
        first_error: r.firstError ?? (localResult.first_error as string | undefined),
      });
    } finally {
      if (stopped && redisPid !== null) Deno.kill(redisPid, "SIGCONT");
      waiter?.close();
      await localGen?.stop();
      await started.stop();
    }
  },
};

/**
 * The user whose session waits on Redis: logged in on its own connection (in
 * this process), reading what it is sent, and sending TCPAsks, each of which
 * holds its session's mailbox until Redis answers or the node gives up.
 */
class Waiter {
  readonly #conn: Deno.Conn;
  readonly #pseudo: string;
  /** SPMs read. */
  received = 0;
  asks = 0;
  /** The ERROR codes its asks got (and any other), by code. */
  readonly answers: Record<string, number> = {};
  /** Why its connection ended, if the server closed it. */
  ended: string | null = null;
  #closing = false;

  private constructor(conn: Deno.Conn, pseudo: string) {
    this.#conn = conn;
    this.#pseudo = pseudo;
    const scan = new FrameScanner();
    const sink = {
      onFrame: (op: number, buf: Uint8Array, off: number) => {
        if (op === OP_SPM) this.received++;
        else if (op === OP_ERROR) {
          const code = String(buf[off + 1]);
          this.answers[code] = (this.answers[code] ?? 0) + 1;
        }
      },
    };
    readLoop(conn, 64 * 1024, (buf, n) => scan.feed(buf, n, sink), (why) => {
      if (!this.#closing) this.ended = why;
    });
  }

  static async login(port: number, pseudo: string): Promise<Waiter> {
    const conn = await dial(port);
    await login(conn, pseudo);
    return new Waiter(conn, pseudo);
  }

  /** Sends a TCPAsk to `to` now and every `everyMs`; clearInterval the result to stop. */
  keepAsking(to: string, everyMs: number): ReturnType<typeof setInterval> {
    const ask = () => {
      if (this.ended !== null) return;
      this.asks++;
      writeAll(this.#conn, frame(OP_TCPASK, [this.#pseudo, to], this.asks & 0xffff)).catch(
        (e) => (this.ended ??= `ask write: ${errorMessage(e)}`),
      );
    };
    ask();
    return setInterval(ask, everyMs);
  }

  close(): void {
    this.#closing = true;
    closeQuietly(this.#conn);
  }
}
