/**
 * Flood control charges an SMA for every user it reaches, on every node
 * (docs/PROTOCOL.md, "flood control"): a sender on a node with few users, in
 * a cluster whose users sit on another node, is slowed exactly as if they were
 * all on its own node. Two in-process nodes share a redis-server this file
 * starts; the same measurement on one node with every user local is the yardstick.
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import type { Relay } from "../src/presence/presence.ts";
import { createRedisPresence } from "../src/presence/redis.ts";
import { encode, ErrorCode, Op } from "../src/protocol/mod.ts";
import { type RunningServer, startServer } from "../src/server/server.ts";
import { clientsOn, eventually } from "./helpers/harness.ts";
import { startRedis } from "./helpers/redis_server.ts";
import { log } from "./helpers/presence_testkit.ts";

/** Users reached by each SMA: all but the sender. */
const OTHERS = 30;
const SMAS = 3;
const message = "x".repeat(200);
const sma = { op: Op.SMA, sender: "flooder", message } as const;
/** The byte budget: one SMA's cost at OTHERS recipients, refilled once a second. */
const RATE = encode(sma).length * OTHERS;
const limits = { host: "127.0.0.1", port: 0, rateBytes: RATE, rateBytesBurst: RATE };

/**
 * The flooder sends SMAs one at a time, each after the last one's answer, so each is a read of
 * its own: the last can be read only once the first SMAS-1 are paid for, which at OTHERS
 * recipients takes SMAS-2 seconds past the burst; at one recipient (a count of local users
 * only, on a node where the flooder is alone) they fit the burst and take no time.
 */
async function floodMs(flooder: ChatClient): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < SMAS; i++) {
    flooder.send(sma);
    assert.equal(await flooder.nextError(10_000), ErrorCode.OK, `SMA ${i}`);
  }
  return performance.now() - t0;
}

/** The least time SMAS sequential SMAs can take if each costs its size times OTHERS. */
const leastMs = (((SMAS - 1) * encode(sma).length * OTHERS - RATE) / RATE) * 1000;

async function assertThrottledAsIfLocal(server: RunningServer, flooder: ChatClient) {
  const ms = await floodMs(flooder);
  // A lower bound only (a slow machine takes longer, never shorter); 5 % for timer rounding.
  const took = Math.round(ms);
  assert.ok(ms >= leastMs * 0.95, `${SMAS} SMAs to ${OTHERS} users took ${took} ms < ${leastMs}`);
  assert.ok(server.context.metrics.throttled > 0, "the flooder's node paused it");
}

Deno.test("flood control, one node: an SMA costs its size times the users it reaches", async () => {
  const server = await startServer(limits);
  const { clients, login } = clientsOn(() => server.port);
  try {
    for (let i = 0; i < OTHERS; i++) await login(`u${i}`);
    await assertThrottledAsIfLocal(server, await login("flooder"));
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
});

Deno.test({
  name: "flood control, two nodes: the SMA sender pays for the users of the other node too",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const redis = await startRedis();
    // A short heartbeat: the nodes learn each other's counts sooner (the default is 1 s).
    const settings = { url: redis.url, bridge: "", heartbeatMs: 100, log };
    // Started by hand (not by the server) to be able to ask A's relay what it counts.
    let relayOfA: Relay | null = null;
    const a = await startServer(limits, {
      presence: async (users) => {
        const p = await createRedisPresence({ ...settings, nodeId: "fan-a" }, users);
        relayOfA = p.relay;
        return p;
      },
    });
    const b = await startServer(limits, {
      presence: (users) => createRedisPresence({ ...settings, nodeId: "fan-b" }, users),
    });
    const onA = clientsOn(() => a.port), onB = clientsOn(() => b.port);
    try {
      const listeners = [];
      for (let i = 0; i < OTHERS; i++) listeners.push(await onB.login(`u${i}`));
      const flooder = await onA.login("flooder");
      // Node A learns B's count on its heartbeat: wait for that, not for a time.
      await eventually(() => relayOfA!.remoteUsers === OTHERS, 5000, "A counts B's users");
      await assertThrottledAsIfLocal(a, flooder);
      // The SMAs did reach node B's users.
      for (let i = 0; i < SMAS; i++) assert.equal((await listeners[0].next()).op, Op.SMA);
    } finally {
      for (const c of [...onA.clients, ...onB.clients]) c.close();
      await a.close();
      await b.close();
      await redis.stop();
    }
  },
});
