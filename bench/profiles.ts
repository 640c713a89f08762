/**
 * The sizes each run profile uses (full, --quick, --smoke), and `--set
 * group.field=N` overrides. A profile is plain data: scenarios read their own
 * group of it and nothing else changes it after the run starts.
 */

export type ProfileName = "full" | "quick" | "smoke";

export interface Profile {
  readonly name: ProfileName;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly rounds: number;
  /** Also measure the ceiling's latency at spm-half's rate. */
  readonly ceilingHalf: boolean;
  readonly connect: { sessions: number; gens: number; concurrency: number };
  readonly spm: { pairs: number; window: number; msgSize: number };
  readonly sma: { receivers: number; senders: number; window: number; msgSize: number };
  readonly link: { chunk: number };
  readonly cluster: {
    pairs: number;
    window: number;
    rate: number;
    receivers: number;
    senders: number;
  };
  /** One flooder (window of SMAs, ungated) → reading receivers, beside a paced pair. */
  readonly floodSma: { receivers: number; window: number; msgSize: number; pairRate: number };
  /** Flooders sending the largest SPMs to reading recipients, beside a paced pair. */
  readonly floodBig: { clients: number; window: number; msgSize: number; pairRate: number };
  /** Recipients that never read, sent small and large SPMs alternately (per pair). */
  readonly slowReaders: {
    readers: number;
    window: number;
    smallSize: number;
    bigSize: number;
    maxQueuedBytes: number;
    /** How long small texts flood the readers: the kernel's socket buffers take ~4 MB each first. */
    smallMs: number;
  };
  /**
   * cross-node (issue 20): `pairs` × `window` SPMs of `msgSize`, latency-bound, first all on one
   * node, then each pair split over two of three nodes; then paced at `rate` msgs/s.
   */
  readonly crossNode: { pairs: number; window: number; msgSize: number; rate: number };
  /**
   * redis-stop: `pairs` senders flooding `msgSize` SPMs cross-node, and as many (from the
   * stop on) at one local user whose session waits on Redis, each with `window` un-acked;
   * Redis stopped for `stopMs`.
   */
  readonly redisStop: { pairs: number; window: number; msgSize: number; stopMs: number };
  /**
   * The peer scenarios' shapes (bench/scenarios/peers.ts): private messages, `pairs` ×
   * `window`; a room of `room` users with `roomSenders` senders and one of `bigRoom` with
   * `bigRoomSenders`, each sender `roomWindow` in flight; `logins` at `loginsAtOnce` at a time.
   */
  readonly peers: {
    pairs: number;
    window: number;
    msgSize: number;
    room: number;
    roomSenders: number;
    bigRoom: number;
    bigRoomSenders: number;
    roomWindow: number;
    logins: number;
    loginsAtOnce: number;
  };
}

const FULL: Profile = {
  name: "full",
  warmupMs: 1000,
  durationMs: 4000,
  rounds: 3,
  ceilingHalf: true,
  connect: { sessions: 19_000, gens: 2, concurrency: 64 },
  spm: { pairs: 50, window: 64, msgSize: 32 },
  sma: { receivers: 1000, senders: 4, window: 16, msgSize: 32 },
  link: { chunk: 64 * 1024 },
  cluster: { pairs: 60, window: 64, rate: 10_000, receivers: 1000, senders: 4 },
  floodSma: { receivers: 500, window: 64, msgSize: 1024, pairRate: 200 },
  floodBig: { clients: 2, window: 16, msgSize: 32_767, pairRate: 200 },
  slowReaders: {
    readers: 40,
    window: 16,
    smallSize: 22,
    bigSize: 32_767,
    maxQueuedBytes: 1 << 20,
    smallMs: 20_000,
  },
  redisStop: { pairs: 8, window: 32, msgSize: 32_767, stopMs: 3000 },
  crossNode: { pairs: 20, window: 1, msgSize: 32, rate: 10_000 },
  // The shapes of the 2026-11-29 comparison (issue 21); only `--only peers` or a full run.
  peers: {
    pairs: 50,
    window: 16,
    msgSize: 64,
    room: 200,
    roomSenders: 1,
    bigRoom: 1000,
    bigRoomSenders: 4,
    roomWindow: 4,
    logins: 5000,
    loginsAtOnce: 200,
  },
};

const QUICK: Profile = {
  ...FULL,
  name: "quick",
  warmupMs: 500,
  durationMs: 1500,
  rounds: 1,
  ceilingHalf: false,
  connect: { sessions: 4000, gens: 2, concurrency: 64 },
  spm: { pairs: 30, window: 64, msgSize: 32 },
  cluster: { pairs: 30, window: 64, rate: 10_000, receivers: 300, senders: 3 },
  floodSma: { ...FULL.floodSma, receivers: 200 },
};

const SMOKE: Profile = {
  ...QUICK,
  name: "smoke",
  warmupMs: 200,
  durationMs: 500,
  connect: { sessions: 300, gens: 2, concurrency: 32 },
  spm: { pairs: 8, window: 16, msgSize: 32 },
  sma: { receivers: 100, senders: 2, window: 8, msgSize: 32 },
  cluster: { pairs: 6, window: 8, rate: 2000, receivers: 60, senders: 2 },
  floodSma: { ...FULL.floodSma, receivers: 50 },
  slowReaders: { ...FULL.slowReaders, readers: 10, smallMs: 500 },
  redisStop: { pairs: 2, window: 8, msgSize: 32_767, stopMs: 1500 },
};

export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  full: FULL,
  quick: QUICK,
  smoke: SMOKE,
};

export interface Overrides {
  rounds?: number;
  durationS?: number;
  /** "group.field=number" each. */
  sets?: string[];
}

/** A copy of `base` with the command line's overrides; throws on a `--set` naming no field. */
export function withOverrides(base: Profile, o: Overrides): Profile {
  const p = structuredClone(base) as unknown as Record<string, unknown>;
  for (const [flag, v] of [["--rounds", o.rounds], ["--duration", o.durationS]] as const) {
    if (v !== undefined && !(v > 0)) throw new Error(`${flag}: expected a positive number`);
  }
  if (o.rounds !== undefined) p.rounds = Math.max(1, Math.round(o.rounds));
  if (o.durationS !== undefined) p.durationMs = Math.max(100, o.durationS * 1000);
  for (const kv of o.sets ?? []) {
    const m = kv.match(/^(\w+)\.(\w+)=(\d+(?:\.\d+)?)$/);
    const group = m ? p[m[1]] as Record<string, unknown> | undefined : undefined;
    if (!m || !group || typeof group !== "object" || typeof group[m[2]] !== "number") {
      throw new Error(`--set ${kv}: expected group.field=number with a field of the profile`);
    }
    group[m[2]] = Number(m[3]);
  }
  return p as unknown as Profile;
}
