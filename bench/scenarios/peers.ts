/**
 * peers (group): ours next to the IRC daemons people already run, at the same
 * shapes, driven by the same generator (bench/gen/peer.ts speaks ChatOS or
 * IRC), every server in turn in each round, the order rotated per round:
 *
 *   peers-pm        private messages, `pairs` × `window` in flight, end to end
 *   peers-room      a room of `room` users, `roomSenders` × `roomWindow` in flight
 *   peers-bigroom   a room of `bigRoom` users, `bigRoomSenders` × `roomWindow`
 *   peers-login     `logins` logins, `loginsAtOnce` at a time, a fresh server each
 *                   round (and peers-rss: what each idle session costs it)
 *
 * The figure is the server's CPU per delivered message: user + system time of
 * the server process (all its threads, /proc) over the window, divided by the
 * deliveries the generator counted; median of the rounds. The line's ceiling
 * is the best daemon's, and its ratio ours over it (lower is better).
 *
 * What is turned off, on every server, and why: flood control, because these
 * shapes measure throughput, which flood control exists to cap; and the
 * per-address limits, because every bench client comes from loopback (see
 * LIMITS_OFF, and the top of bench/peers/*.conf for each daemon's settings).
 */
import type { GenConfig } from "../gen/config.ts";
import type { Proc } from "../harness.ts";
import { type LoadResult, runLoad } from "../measure.ts";
import { type DaemonName, daemonVersion, startDaemon } from "../peers/daemons.ts";
import type { Profile } from "../profiles.ts";
import { latency, round } from "../report.ts";
import { type RunContext, type Scenario, skipAll } from "../scenario.ts";
import { connectRun } from "./connect.ts";

/** Each server measured, as the scenario names it. */
const SERVERS = ["chatos", "inspircd", "ngircd", "ngircd+F"] as const;
type ServerName = (typeof SERVERS)[number];

export const LIMITS_OFF: Readonly<Record<ServerName, string>> = {
  chatos: "--rate-frames 0 --rate-bytes 0 (flood control), --max-conns-per-address 0 " +
    "--max-sessions-per-address 0 --conn-rate-per-address 0 (per-address limits): bench/harness.ts",
  inspircd: "connect class: threshold 1000000, commandrate 1000000000, fakelag no (so a " +
    "flooder would be quit, never slowed unseen), send/receive queues 64M/1M, " +
    "localmax/globalmax/limit 100000, no DNS or ident: bench/peers/inspircd.conf",
  ngircd: "MaxPenaltyTime 0 (no penalty time), MaxConnections(IP) 0, no DNS or ident; " +
    "still 3 commands per main-loop pass and a 1 s throttle past that (not configurable): " +
    "bench/peers/ngircd.conf",
  "ngircd+F": "as ngircd, and every session OPERs and sets user mode +F, which lifts the " +
    "throttle (10 commands per pass): the only way ngIRCd offers",
};

const DAEMONS: readonly DaemonName[] = ["inspircd", "ngircd"];

/** What one server did at one shape, over the rounds. */
interface ServerFigures {
  /** Server CPU per delivered message (µs), or per login for peers-login; median of rounds. */
  cpu_us: number | null;
  rounds_cpu_us: number[];
  /** Deliveries/s (logins/s for peers-login), of the median round. */
  rate?: number;
  p50_ms?: number;
  p99_ms?: number;
  /**
   * CPUs busy over the median round's window: the server, the generator, and the rest
   * of the machine (other users' work: noise). A generator near 1 sets the pace for all.
   */
  load?: { server: number; gen: number; other: number };
  /** peers-login: RSS per idle session (KiB). */
  rss_kib?: number;
  errors?: number;
  first_error?: string;
  /** Why this server has no figure. */
  missing?: string;
}

export const medianIndex = (xs: number[]) => {
  const order = xs.map((x, i) => [x, i]).sort((a, b) => a[0] - b[0]);
  return order[Math.floor((order.length - 1) / 2)][1];
};

/** Starts what can run here: ours, and each daemon that is installed (else why not). */
async function startServers(ctx: RunContext, missing: Map<ServerName, string>) {
  const procs = new Map<ServerName, Proc & { stop(): Promise<void> }>();
  const ours = await ctx.h.startServer("server");
  procs.set("chatos", { ...ours, stop: () => ours.child.stop() });
  for (const d of DAEMONS) {
    const v = await daemonVersion(d);
    if (v.why) {
      missing.set(d, v.why);
      if (d === "ngircd") missing.set("ngircd+F", v.why);
      continue;
    }
    const p = await startDaemon(ctx.h, d);
    procs.set(d, p);
    if (d === "ngircd") procs.set("ngircd+F", p);
  }
  return procs;
}

/** The order of the servers in round `r`: rotated, so that none always runs first. */
const rotated = <T>(xs: readonly T[], r: number) => xs.map((_, i) => xs[(i + r) % xs.length]);

/** The generator's config for `server` at `shape` (bench/peers/ab.ts drives the same). */
export function genConfig(
  profile: Profile,
  shape: MsgShape,
  server: ServerName,
  port: number,
) {
  const p = profile.peers;
  const base = {
    target: server === "chatos" ? "chatos" as const : "ircd" as const,
    ports: [port],
    oper: server === "ngircd+F" || undefined,
    msgSize: p.msgSize,
  };
  if (shape === "peers-pm") {
    return { ...base, mode: "peer-pm" as const, pairs: p.pairs, window: p.window };
  }
  const [size, senders] = shape === "peers-room"
    ? [p.room, p.roomSenders]
    : [p.bigRoom, p.bigRoomSenders];
  return {
    ...base,
    mode: "peer-room" as const,
    senders,
    receivers: size - senders,
    window: p.roomWindow,
  } satisfies Omit<GenConfig, "gen">;
}

export const perMessageUs = (r: LoadResult) => (r.serverCpu / (r.rate * r.elapsed)) * 1e6;

function figuresOf(runs: LoadResult[]): ServerFigures {
  const us = runs.map(perMessageUs);
  const m = runs[medianIndex(us)];
  const errors = runs.reduce((s, r) => s + r.errors, 0);
  return {
    cpu_us: us[medianIndex(us)],
    rounds_cpu_us: us.map((x) => round(x, 3)),
    rate: Math.round(m.rate),
    ...latency(m.hist),
    load: {
      server: round(m.serverCpu / m.elapsed),
      gen: round(m.genCpu / m.elapsed),
      other: round(m.foreignCpu / m.elapsed),
    },
    errors: errors || undefined,
    first_error: runs.map((r) => r.firstError).find((x) => x),
  };
}

/** The best daemon (lowest figure) and ours over it. */
function compare(figure: Partial<Record<ServerName, number | null>>) {
  let best: ServerName | null = null;
  for (const s of SERVERS) {
    const x = figure[s];
    if (s === "chatos" || x == null || !Number.isFinite(x)) continue;
    if (best === null || x < figure[best]!) best = s;
  }
  const ours = figure.chatos ?? null;
  const ceiling = best ? figure[best]! : null;
  return {
    value: ours,
    ceiling,
    ratio: ours !== null && ceiling !== null ? ours / ceiling : null,
    best: best ?? undefined,
  };
}

const cpuOfEach = (figs: Partial<Record<ServerName, ServerFigures>>) =>
  Object.fromEntries(Object.entries(figs).map(([s, f]) => [s, f.cpu_us]));

function note(ctx: RunContext, shape: string, figs: Partial<Record<ServerName, ServerFigures>>) {
  ctx.h.console.note(`  ${shape}:`);
  for (const s of SERVERS) {
    const f = figs[s];
    if (!f) continue;
    if (f.missing) {
      ctx.h.console.note(`    ${s.padEnd(9)} —  ${f.missing}`);
      continue;
    }
    const rss = f.rss_kib === undefined ? "" : `, ${f.rss_kib.toFixed(1)} KiB/idle session`;
    const lat = f.p99_ms === undefined ? "" : `, p50 ${f.p50_ms} ms, p99 ${f.p99_ms} ms`;
    const err = f.errors ? `, ${f.errors} errors (${f.first_error})` : "";
    const load = f.load
      ? `, CPUs busy: server ${f.load.server}, gen ${f.load.gen}, others ${f.load.other}`
      : "";
    ctx.h.console.note(
      `    ${s.padEnd(9)} ${f.cpu_us?.toFixed(2)} µs CPU (rounds ${f.rounds_cpu_us.join(" ")}), ` +
        `${f.rate}/s${lat}${rss}${load}${err}`,
    );
  }
}

export type MsgShape = "peers-pm" | "peers-room" | "peers-bigroom";

function messageScenario(shape: MsgShape, text: string, max: number): Scenario {
  return {
    name: shape,
    groups: ["peers"],
    profiles: ["full"],
    targets: { [shape]: { text, bounds: [{ field: "ratio", max }] } },
    async run(ctx) {
      const missing = new Map<ServerName, string>();
      const procs = await startServers(ctx, missing);
      try {
        if (procs.size === 1) return skipAll(ctx, [shape], [...missing.values()].join("; "));
        const runs = new Map<ServerName, LoadResult[]>();
        const order = SERVERS.filter((s) => procs.has(s));
        for (let r = 0; r < ctx.profile.rounds; r++) {
          for (const s of rotated(order, r)) {
            const p = procs.get(s)!;
            const label = `${shape} round ${r + 1}/${ctx.profile.rounds}: ${s}`;
            const res = await runLoad(
              ctx.h,
              [genConfig(ctx.profile, shape, s, p.port)],
              [p],
              label,
            );
            runs.set(s, [...runs.get(s) ?? [], res]);
          }
        }
        const figs: Partial<Record<ServerName, ServerFigures>> = {};
        for (const s of SERVERS) {
          const m = missing.get(s);
          figs[s] = m ? { cpu_us: null, rounds_cpu_us: [], missing: m } : figuresOf(runs.get(s)!);
        }
        note(ctx, shape, figs);
        const cfg = genConfig(ctx.profile, shape, "chatos", 0);
        ctx.emit({
          scenario: shape,
          unit: "µs CPU/msg",
          ...compare(cpuOfEach(figs)),
          ...latency(runs.get("chatos")![medianIndex(figs.chatos!.rounds_cpu_us)].hist),
          shape: { ...cfg, target: undefined, ports: undefined, oper: undefined },
          servers: figs,
          limits_off: LIMITS_OFF,
        });
      } finally {
        await Promise.all([...new Set(procs.values())].map((p) => p.stop()));
      }
    },
  };
}

export const peersPm = messageScenario("peers-pm", "≤ 1.0× best daemon's CPU/msg", 1);
export const peersRoom = messageScenario("peers-room", "≤ 1.2× best daemon's CPU/msg", 1.2);
export const peersBigRoom = messageScenario("peers-bigroom", "≤ 1.2× best daemon's CPU/msg", 1.2);

/** One round of logins on a fresh server: CPU per login, logins/s, RSS per idle session. */
async function loginRound(ctx: RunContext, s: "chatos" | DaemonName) {
  const p = ctx.profile.peers;
  const proc = s === "chatos"
    ? await ctx.h.startServer("server").then((o) => ({ ...o, stop: () => o.child.stop() }))
    : await startDaemon(ctx.h, s);
  try {
    const sizes = { sessions: p.logins, gens: 2, concurrency: p.loginsAtOnce / 2 };
    const c = await connectRun(ctx, proc, s === "chatos" ? "chatos" : "ircd", sizes);
    return {
      us: (c.serverCpu / Math.max(1, c.logins)) * 1e6,
      rate: c.rate,
      rss: (c.rss1 - c.rss0) / Math.max(1, c.logins),
      failures: c.failures,
    };
  } finally {
    await proc.stop();
  }
}

export const peersLogin: Scenario = {
  name: "peers-login",
  groups: ["peers"],
  profiles: ["full"],
  targets: { "peers-login": null, "peers-rss": null },
  async run(ctx) {
    const servers: ("chatos" | DaemonName)[] = ["chatos"];
    const missing = new Map<ServerName, string>();
    for (const d of DAEMONS) {
      const v = await daemonVersion(d);
      if (v.why) missing.set(d, v.why);
      else servers.push(d);
    }
    if (servers.length === 1) {
      return skipAll(ctx, ["peers-login", "peers-rss"], [...missing.values()].join("; "));
    }
    const rounds = new Map<string, Awaited<ReturnType<typeof loginRound>>[]>();
    for (let r = 0; r < ctx.profile.rounds; r++) {
      for (const s of rotated(servers.filter((x) => !missing.has(x)), r)) {
        try {
          rounds.set(s, [...rounds.get(s) ?? [], await loginRound(ctx, s)]);
        } catch (e) {
          // ngIRCd's listen backlog of 10 can keep 200 logins at a time past the generator's
          // deadline: that server gets no figure, the others keep theirs.
          missing.set(s, `failed: ${(e as Error).message.split("\n")[0]}`);
          rounds.delete(s);
        }
      }
    }
    const cpu: Partial<Record<ServerName, ServerFigures>> = {};
    const rss: Partial<Record<ServerName, number | null>> = {};
    for (const s of servers.filter((x) => rounds.has(x))) {
      const rs = rounds.get(s)!;
      const us = rs.map((x) => x.us);
      const m = rs[medianIndex(us)];
      const kib = rs.map((x) => x.rss);
      const failures = rs.reduce((n, x) => n + x.failures, 0) || undefined;
      cpu[s] = {
        cpu_us: m.us,
        rounds_cpu_us: us.map((x) => round(x, 1)),
        rate: Math.round(m.rate),
        rss_kib: kib[medianIndex(kib)],
        errors: failures,
      };
      rss[s] = kib[medianIndex(kib)];
    }
    missing.set("ngircd+F", "not measured: a session can OPER only once logged in");
    for (const [s, why] of missing) cpu[s] = { cpu_us: null, rounds_cpu_us: [], missing: why };
    note(ctx, "peers-login (µs CPU per login, logins/s)", cpu);
    const shape = { logins: ctx.profile.peers.logins, at_once: ctx.profile.peers.loginsAtOnce };
    ctx.emit({
      scenario: "peers-login",
      unit: "µs CPU/login",
      ...compare(cpuOfEach(cpu)),
      shape,
      servers: cpu,
      limits_off: LIMITS_OFF,
    });
    ctx.emit({ scenario: "peers-rss", unit: "KiB/idle session", ...compare(rss), shape });
  },
};
