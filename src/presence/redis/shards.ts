/**
 * Redis Cluster: whether the clients that send commands (`cmd`, `pub`) can
 * reach the primary of every hash slot now. ioredis calls a cluster client
 * "ready" once for the whole cluster, but each primary has its own socket,
 * and the slot map is read again only when a command meets a redirect. So
 * after a failover a client may still route a slot to the dead primary (its
 * socket closed) or to another one (MOVED), and an auto-pipelined batch whose
 * commands were redirected to different slots is not retried by ioredis (a
 * cluster pipeline is retried only when every reply failed alike): the first
 * publish after "ready" failed. A node counts as ready only while each
 * client's map names, for every slot, a primary with a connected socket, and
 * not between a failover and the next reading of the maps.
 */
import type { Cluster } from "ioredis";
import { sleep } from "../../lib/async.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";

const SLOTS = 16384;
/**
 * The epoch grows when a replica asks for votes, the slot map changes once it has won, moments
 * later: a map read in between still names the old primary (alive after a manual failover, so
 * nothing shows it is stale). After a failover is seen, only a reading started this much later
 * counts.
 */
const VOTE_MS = 250;
/**
 * Then, while the map still names a primary that cannot be reached (the dead one), read again this
 * often, for this long; past that (and otherwise) once per follow(), i.e. per heartbeat.
 */
const REREAD_EVERY_MS = 200;
const REREAD_FOR_MS = 1000;

export class ShardRoutes {
  readonly #clients: readonly Cluster[];
  readonly #log: LogFn;
  /** Bumped by stale(); the maps are fresh once a reading started at this count finished. */
  #staleCount = 0;
  #freshCount = 0;
  #following: Promise<void> | null = null;
  #staleAt = -Infinity;
  #stopped = false;

  constructor(clients: readonly Cluster[], log: LogFn) {
    this.#clients = clients;
    this.#log = log;
  }

  /** Every slot's primary connected in every client, and no failover since the last reading. */
  get ready(): boolean {
    return this.#freshCount === this.#staleCount && this.#clients.every(servesEverySlot);
  }

  /** Slots moved (the cluster failed over): not ready until every map is read again. */
  stale(): void {
    this.#staleCount++;
    this.#staleAt = performance.now();
    this.follow();
  }

  /**
   * Reads every slot map again and connects to every primary it names; one run at a time (a
   * stale() meanwhile makes it read once more). Never rejects; `ready` tells the outcome.
   */
  follow(): Promise<void> {
    return this.#following ??= this.#follow().finally(() => this.#following = null);
  }

  /** The connections are closing: no more readings. */
  stop(): void {
    this.#stopped = true;
  }

  async #follow(): Promise<void> {
    while (!this.#stopped) {
      const count = this.#staleCount;
      const early = this.#staleAt + VOTE_MS - performance.now();
      if (early > 0) {
        await sleep(early);
        continue;
      }
      const read = await Promise.all(this.#clients.map(async (c) => {
        const ok = await readSlots(c, this.#log);
        await connectPrimaries(c);
        return ok;
      }));
      // A map that could not be read is still the one from before the failover.
      if (read.every(Boolean)) this.#freshCount = count;
      if (this.#staleCount !== count) continue;
      if (this.ready || performance.now() > this.#staleAt + VOTE_MS + REREAD_FOR_MS) return;
      await sleep(REREAD_EVERY_MS);
    }
  }
}

/** Reads the slot map again (from any server that answers); false if none did. */
function readSlots(c: Cluster, log: LogFn): Promise<boolean> {
  return new Promise((resolve) =>
    c.refreshSlotsCache((e) => {
      if (e) log("debug", "reading the redis cluster slot map failed", { error: errorMessage(e) });
      resolve(!e);
    })
  );
}

/** The map's primaries, by "host:port" as ioredis keys them, each once. */
function primaryKeys(c: Cluster): Set<string> | null {
  const slots = c.slots;
  if (slots.length < SLOTS) return null;
  const out = new Set<string>();
  let prev: string[] | undefined;
  for (let i = 0; i < SLOTS; i++) {
    const owners = slots[i];
    if (owners === prev) continue; // a range shares one array
    prev = owners;
    if (!owners?.length) return null;
    out.add(owners[0]);
  }
  return out;
}

function byKey(c: Cluster) {
  return new Map(c.nodes("all").map((r) => [`${r.options.host}:${r.options.port}`, r]));
}

function servesEverySlot(c: Cluster): boolean {
  const primaries = primaryKeys(c);
  if (!primaries) return false;
  const sockets = byKey(c);
  for (const k of primaries) if (sockets.get(k)?.status !== "ready") return false;
  return true;
}

/** ioredis opens a primary's socket at its first command; open them all now. */
async function connectPrimaries(c: Cluster): Promise<void> {
  const sockets = byKey(c);
  const waiting = [...primaryKeys(c) ?? []].map((k) => sockets.get(k))
    .filter((r) => r?.status === "wait");
  // A failure shows as a socket that is not ready; ioredis drops it from the pool.
  await Promise.all(waiting.map((r) => r!.connect().catch(() => {})));
}
