/**
 * The bridge greeting between nodes, over real loopback sockets: a valid
 * greeting joins, a forged or wrong-secret one is refused, a token works
 * once, a truncated or silent greeting ends within its deadline.
 */
import assert from "node:assert/strict";
import { encodeGreeting, readGreeting } from "../src/server/links/bridge.ts";
import { LinkBroker } from "../src/server/links/broker.ts";
import { HandshakeAborts } from "../src/server/links/aborts.ts";
import { LinkGuard } from "../src/server/links/guard.ts";
import { Metrics } from "../src/server/metrics.ts";
import { MemoryPresence } from "../src/presence/memory.ts";
import { bareClaim } from "../src/presence/presence.ts";
import { LocalUsers } from "../src/server/local_users.ts";
import { encode, Op } from "../src/protocol/mod.ts";
import { silentLogger } from "../src/lib/log.ts";
import { WarnThrottle } from "../src/lib/rate.ts";
import { FdBudget } from "../src/server/limits/fd_budget.ts";
import { defaultConfig } from "../src/server/config.ts";
import { withDeadline, writeAll } from "../src/lib/async.ts";
import { socketPair } from "./helpers/socket_pair.ts";

const SECRET = "a-cluster-secret-of-thirty-two-bytes";

/** Up to `n` bytes, fewer if the peer closes first; fails after 2 s (a safety net). */
function readN(conn: Deno.Conn, n: number): Promise<number[]> {
  const read = async () => {
    const out: number[] = [];
    const buf = new Uint8Array(64);
    while (out.length < n) {
      const r = await conn.read(buf);
      if (r === null) break;
      out.push(...buf.subarray(0, r));
    }
    return out;
  };
  return withDeadline(read(), 2000, () => new Error(`no EOF or ${n} bytes within 2 s`));
}

async function greet(bytes: Uint8Array, timeoutMs = 2000) {
  const [server, client] = await socketPair();
  try {
    await writeAll(client, bytes);
    return await readGreeting(server, SECRET, timeoutMs);
  } finally {
    server.close();
    client.close();
  }
}

Deno.test("bridge greeting: a valid one gives the token and the bytes that followed", async () => {
  const g = await encodeGreeting("tok-1", SECRET);
  const got = await greet(Uint8Array.of(...g, 5, 6, 7));
  assert.ok("token" in got, JSON.stringify(got));
  assert.equal(got.token, "tok-1");
  assert.deepEqual([...got.initial], [5, 6, 7]);
});

Deno.test("bridge greeting: a forged HMAC is refused", async () => {
  const g = await encodeGreeting("tok-1", SECRET);
  g[g.length - 1] ^= 1;
  assert.deepEqual(await greet(g), { refused: "bad HMAC: cluster secret mismatch?" });
});

Deno.test("bridge greeting: a greeting made with another secret is refused, saying so", async () => {
  assert.deepEqual(await greet(await encodeGreeting("tok-1", "not-the-cluster-secret")), {
    refused: "bad HMAC: cluster secret mismatch?",
  });
});

Deno.test("bridge greeting: a bad token length is refused without waiting", async () => {
  assert.deepEqual(await greet(Uint8Array.of(0, 0)), {
    refused: "malformed greeting: a token of 0 bytes (not a ChatOS node?)",
  });
  assert.deepEqual(await greet(Uint8Array.of(0xff, 0xff)), {
    refused: "malformed greeting: a token of 65535 bytes (not a ChatOS node?)",
  });
});

Deno.test("bridge greeting: a truncated greeting fails when the peer closes", async () => {
  const g = await encodeGreeting("tok-1", SECRET);
  const [server, client] = await socketPair();
  await writeAll(client, g.subarray(0, 10));
  client.close();
  await assert.rejects(readGreeting(server, SECRET, 2000), /closed during greeting/);
  server.close();
});

Deno.test("bridge greeting: a silent peer times out and its socket is closed", async () => {
  const [server, client] = await socketPair();
  await writeAll(client, Uint8Array.of(0, 5));
  const started = Date.now();
  await assert.rejects(readGreeting(server, SECRET, 150), /timed out/);
  assert.ok(Date.now() - started < 1500, "ended by the deadline");
  assert.deepEqual(await readN(client, 1), [], "the server side closed: the dialer sees EOF");
  client.close();
});

Deno.test("bridge: a token joins once; the same greeting replayed is answered 0", async () => {
  const presence = new MemoryPresence({ nodeId: "n1" });
  const users = new LocalUsers(silentLogger);
  const { directory, handshakes, relay } = presence;
  const metrics = new Metrics();
  const budget = new FdBudget(100);
  const aborts = new HandshakeAborts(handshakes, users, relay, silentLogger);
  const guard = new LinkGuard(
    { users, directory, handshakes },
    aborts,
    {
      guessLimitPair: 3,
      guessLimitAddress: 20,
      guessWindowMs: 60_000,
    },
    silentLogger,
    new WarnThrottle(silentLogger, 10_000),
    metrics,
  );
  const broker = new LinkBroker({
    nodeId: presence.nodeId,
    handshakes,
    users,
    relay,
    aborts,
    guard,
    log: silentLogger,
    warn: new WarnThrottle(silentLogger, 10_000),
    metrics,
    budget,
    limits: { ...defaultConfig(), handshakeTtlMs: 60_000 },
    bridge: { address: "127.0.0.1:1", secret: SECRET },
  });
  const key = { a: "alice", b: "bob", password: 7 };
  const nobody = { deliver() {}, evict() {} };
  await users.login("alice", bareClaim("alice"), nobody, presence);
  // B is logged in from the address its private end comes from (else the end is foreign).
  await users.login("bob", { keys: ["bob"], client: "127.0.0.1" }, nobody, presence);
  assert.ok(await handshakes.open(key, 60_000));
  // B's accepting end, parked on this node.
  const [bServer, bClient] = await socketPair();
  const accept = { op: Op.TCPAccept, sender: "alice", recipient: "bob", password: 7 } as const;
  await broker.openAccept(bServer, accept, encode(accept), new Uint8Array(0), "127.0.0.1", {
    release() {},
  });
  assert.equal(broker.parkedCount, 1);
  const endpoint = await handshakes.claim(key);
  assert.ok(endpoint);
  const greeting = await encodeGreeting(endpoint.token, SECRET);

  const [s1, c1] = await socketPair();
  const first = broker.acceptBridge(s1, budget.tryAcquire("bridge")!);
  await writeAll(c1, greeting);
  assert.deepEqual(await readN(c1, 1), [1], "joined");
  await first;
  assert.deepEqual(await readN(bClient, 2), [8, 1], "B hears ERROR 1");

  const [s2, c2] = await socketPair();
  const replay = broker.acceptBridge(s2, budget.tryAcquire("bridge")!);
  await writeAll(c2, greeting);
  assert.deepEqual(await readN(c2, 2), [0], "no such end: 0, then closed");
  await replay;

  broker.closeAll();
  await Promise.all([first, replay]);
  assert.equal(budget.used, 0, "every bridge socket gave its descriptor back");
  for (const c of [c1, c2, bClient]) c.close();
  await presence.close();
});
