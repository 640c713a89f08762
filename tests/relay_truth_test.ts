/**
 * What a sender is told about a frame for another node's user is true (issue 20), on one Redis
 * and on a Redis Cluster:
 * - with Redis paused (SIGSTOP) and resumed, no SPM or SMA answered ERROR 9 is ever delivered,
 *   and every one answered OK is;
 * - while users log out, log in on another node, and a node dies, under a flood across nodes:
 *   a frame acked OK reaches its recipient if that user stays logged in, and ERROR 4 comes only
 *   for a user who was logged in nowhere at some moment of the send.
 */
import assert from "node:assert/strict";
import { sleep } from "../src/lib/async.ts";
import { parseHostPorts, type RedisTarget } from "../src/presence/redis.ts";
import { PresenceUnavailable } from "../src/presence/presence.ts";
import { RecordingInbox } from "./helpers/presence_node.ts";
import { namedTests, node, uniq, until } from "./helpers/presence_testkit.ts";
import type { BreakableRedisNode } from "./helpers/redis_presence_probe.ts";
import { startRedis, startRedisCluster } from "./helpers/redis_server.ts";

type Outcome = "ok" | "unreachable" | "failed";

/** What a send ended as, without throwing. */
async function outcome(p: Promise<unknown> | unknown): Promise<Outcome> {
  try {
    return (await p) === false ? "unreachable" : "ok";
  } catch (e) {
    if (e instanceof PresenceUnavailable) return "failed";
    throw e;
  }
}

/** A frame whose last two bytes number it. */
const numbered = (op: number, i: number) => Uint8Array.of(op, i >> 8, i & 0xff);
const numberOf = (f: Uint8Array) => (f[1] << 8) | f[2];

interface Topology {
  name: string;
  start(): Promise<
    { where: string | RedisTarget; pause(): void; resume(): void; stop(): Promise<void> }
  >;
}

const TOPOLOGIES: Topology[] = [
  {
    name: "one redis",
    async start() {
      const r = await startRedis();
      return {
        where: r.url,
        pause: () => r.pause(),
        resume: () => r.resume(),
        stop: () => r.stop(),
      };
    },
  },
  {
    name: "redis cluster",
    async start() {
      const set = await startRedisCluster();
      const seeds = parseHostPorts(set.seeds);
      if (typeof seeds === "string") throw new Error(seeds);
      const pids = set.servers.map((s) => s.pid);
      const signal = (sig: Deno.Signal) => pids.forEach((pid) => Deno.kill(pid, sig));
      return {
        where: { mode: "cluster", seeds },
        pause: () => signal("SIGSTOP"),
        resume: () => signal("SIGCONT"),
        stop: () => set.stop(),
      };
    },
  },
];

for (const topo of TOPOLOGIES) {
  const test = namedTests(`relay truth [${topo.name}]`);

  test("Redis paused and resumed: nothing answered ERROR 9 is delivered, all answered OK is", async () => {
    const redis = await topo.start();
    const [p, q] = [await node(redis.where), await node(redis.where)];
    try {
      const a = uniq("a"), b = uniq("b");
      const ib = new RecordingInbox();
      await p.login(a);
      await q.login(b, ib);
      // Warm the route and the relay, then pause Redis with frames and broadcasts on the wire.
      assert.equal(await p.send(b, numbered(2, 0)), true);
      await ib.waitFor(1);
      redis.pause();
      const sends = new Map<number, Promise<Outcome>>();
      for (let i = 1; i <= 40; i++) {
        const op = i % 4 === 0 ? 3 : 2; // every fourth is an SMA
        sends.set(
          i,
          outcome(op === 3 ? p.broadcast(numbered(3, i), a) : p.send(b, numbered(2, i))),
        );
        await sleep(50);
      }
      // Answered while Redis is still paused: nothing waits longer than its deadline.
      const answered = new Map<number, Outcome>();
      for (const [i, o] of sends) answered.set(i, await o);
      await sleep(Math.max(0, 5000 - 40 * 50));
      redis.resume();
      // Whatever Redis runs late reaches q now (and is dropped there); then a frame after it.
      await until(
        "Redis to answer again",
        10_000,
        async () => (await outcome(p.send(b, numbered(2, 999)))) === "ok",
      );
      await until(
        "the last frame to arrive",
        5000,
        () => ib.frames.some((f) => numberOf(f) === 999),
      );
      const delivered = new Set(ib.frames.map(numberOf));
      const failed = [...answered].filter(([, o]) => o === "failed").map(([i]) => i);
      const ok = [...answered].filter(([, o]) => o === "ok").map(([i]) => i);
      assert.ok(failed.length > 0, "the pause made some sends fail");
      for (const i of failed) {
        assert.ok(!delivered.has(i), `frame ${i} was answered ERROR 9 and delivered`);
      }
      for (const i of ok) {
        assert.ok(delivered.has(i), `frame ${i} was answered OK and not delivered`);
      }
    } finally {
      redis.resume();
      await Promise.all([p.close(), q.close()]);
      await redis.stop();
    }
  });

  test("churn: moves, logouts and a node dying under a flood: OK means delivered, ERROR 4 means nowhere", async () => {
    const redis = await topo.start();
    const nodes: BreakableRedisNode[] = [];
    try {
      for (let i = 0; i < 3; i++) nodes.push(await node(redis.where));
      const [s, m1, m2] = nodes; // senders on s; recipients move between m1 and m2
      const senders = Array.from({ length: 4 }, () => uniq("s"));
      for (const x of senders) await s.login(x);
      const recipients = Array.from({ length: 6 }, () => uniq("r"));
      /** Every session of every recipient: where, its inbox, when it started and ended. */
      const sessions: { who: string; inbox: RecordingInbox; from: number; to: number }[] = [];
      const open = new Map<
        string,
        { at: BreakableRedisNode; inbox: RecordingInbox; index: number }
      >();
      const login = async (who: string, at: BreakableRedisNode) => {
        const inbox = new RecordingInbox();
        if (await at.login(who, inbox) !== "ok") return;
        sessions.push({ who, inbox, from: performance.now(), to: Infinity });
        open.set(who, { at, inbox, index: sessions.length - 1 });
      };
      const logout = async (who: string) => {
        const o = open.get(who);
        if (!o) return;
        open.delete(who);
        sessions[o.index].to = performance.now();
        await o.at.logout(who, o.inbox);
      };
      for (const [i, r] of recipients.entries()) await login(r, i % 2 ? m1 : m2);

      let stop = false;
      const sent: { to: string; n: number; at: number; answeredAt: number; o: Outcome }[] = [];
      let n = 0;
      const flood = Promise.all(senders.map(async () => {
        while (!stop) {
          const to = recipients[n % recipients.length];
          const i = ++n;
          const at = performance.now();
          const o = await outcome(s.send(to, numbered(2, i)));
          sent.push({ to, n: i, at, answeredAt: performance.now(), o });
        }
      }));
      // Recipients move between m1 and m2 (a logout, then a login elsewhere), for 3 s.
      const moves = (async () => {
        for (let round = 0; round < 15; round++) {
          const who = recipients[round % recipients.length];
          const from = open.get(who)?.at;
          await logout(who);
          await login(who, from === m1 ? m2 : m1);
          await sleep(200);
        }
      })();
      await moves;
      // Then m2 dies with its users on it; the flood goes on for a second.
      for (const [who, o] of open) {
        if (o.at === m2) {
          sessions[o.index].to = performance.now();
          open.delete(who);
        }
      }
      m2.crash();
      await sleep(1000);
      stop = true;
      await flood;
      await sleep(1500); // what is in flight lands
      const end = performance.now();

      let checkedOk = 0, checkedUnreachable = 0;
      for (const f of sent) {
        const mine = sessions.filter((x) => x.who === f.to);
        if (f.o === "ok") {
          // Stayed logged in: one session from before the send to the end.
          const stayed = mine.find((x) => x.from <= f.at && x.to >= end);
          if (!stayed) continue;
          checkedOk++;
          assert.ok(
            stayed.inbox.frames.some((x) => numberOf(x) === (f.n & 0xffff)),
            `frame ${f.n} to ${f.to} was acked OK, and its recipient stayed logged in, but never got it`,
          );
        } else if (f.o === "unreachable") {
          checkedUnreachable++;
          // Nowhere at some moment between the send and its answer: no single session covers it.
          const covered = mine.some((x) => x.from <= f.at && x.to >= f.answeredAt);
          assert.ok(!covered, `frame ${f.n} to ${f.to} got ERROR 4 while ${f.to} was logged in`);
        }
      }
      assert.ok(checkedOk > 100, `enough frames to judge (${checkedOk} acked to users who stayed)`);
      assert.ok(sent.length > checkedOk, `some frames met a move (${checkedUnreachable} ERROR 4)`);
    } finally {
      for (const x of nodes) await x.close();
      await redis.stop();
    }
  });
}
