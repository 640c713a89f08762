/**
 * The operator's surface: /metrics, /healthz, /readyz, graceful drain on
 * SIGTERM, and configuration errors, tested on real processes where it matters.
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import { startCluster } from "../src/ops/cluster.ts";
import { withDeadline } from "../src/lib/async.ts";
import { encode, ErrorCode, Op } from "../src/protocol/mod.ts";
import { helpText, OPTIONS, parseConfig } from "../src/server/config.ts";
import { eventually, withServer } from "./helpers/harness.ts";
import { FILL_MESSAGE, HeldReader, holdOutput, queuedOn } from "./helpers/held_reader.ts";
import { scrape } from "./helpers/metrics.ts";
import { type NodeProcess, redisNodeArgs, startNode } from "./helpers/node_process.ts";
import { openLink } from "./helpers/link.ts";
import { startRedis } from "./helpers/redis_server.ts";

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `ops: ${name}`, fn, sanitizeOps: false, sanitizeResources: false });

t(
  "/metrics counts connections, frames by opcode, errors by code, sessions, malformed frames",
  () =>
    withServer({ adminPort: 0 }, async (h) => {
      const port = h.server.adminPort;
      const before = await scrape(port);
      assert.equal(before.get("chatos_sessions"), 0);
      const a = await h.login("alice");
      const b = await h.login("bob");
      for (let i = 0; i < 5; i++) {
        a.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: `${i}` });
      }
      for (let i = 0; i < 5; i++) {
        assert.equal(await a.nextError(), ErrorCode.OK);
      }
      a.send({ op: Op.SPM, sender: "alice", recipient: "nobody", message: "x" });
      assert.equal(await a.nextError(), ErrorCode.UnreachableUser);
      for (let i = 0; i < 5; i++) {
        await b.next();
      }
      const bad = await h.connect();
      bad.sendRaw(Uint8Array.of(99));
      await bad.closed;
      const after = await scrape(port);
      assert.equal(after.get("chatos_sessions"), 2);
      assert.equal(after.get('chatos_frames_in_total{op="SPM"}'), 6);
      assert.equal(after.get('chatos_frames_in_total{op="CR"}'), 2);
      assert.equal(after.get('chatos_frames_out_total{op="SPM"}'), 5, "relayed to bob");
      assert.equal(after.get('chatos_errors_sent_total{code="1"}'), 7, "2 logins + 5 SPM acks");
      assert.equal(after.get('chatos_errors_sent_total{code="4"}'), 1);
      assert.equal(after.get("chatos_malformed_frames_total"), 1);
      assert.equal(after.get("chatos_connections_opened_total"), 3);
      assert.ok(after.has("chatos_mailbox_depth_max"));
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.status, 200);
      await ready.body?.cancel();
    }),
);

t("/readyz fails while Redis is down and recovers; Redis metrics move", async () => {
  const cluster = await startCluster({ nodes: 1, haproxy: false });
  try {
    const admin = cluster.nodes[0].adminPort;
    const status = async () => {
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`);
      await r.body?.cancel();
      return r.status;
    };
    await eventually(async () => (await status()) === 200, 5000, "ready");
    await cluster.redis!.kill();
    await eventually(async () => (await status()) === 503, 6000, "not ready without Redis");
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200, "still alive");
    await cluster.redis!.start();
    await eventually(async () => (await status()) === 200, 6000, "ready again");
    const m = await scrape(admin);
    assert.ok((m.get("chatos_redis_reconnects_total") ?? 0) >= 1);
    assert.equal(m.get("chatos_ready"), 1);
  } finally {
    await cluster.stop();
  }
});

t("/metrics shows cross-node sends, their latency and the route cache", async () => {
  const cluster = await startCluster({ nodes: 2, haproxy: false });
  const clients: ChatClient[] = [];
  try {
    const on = async (i: number, who: string) => {
      const c = await ChatClient.connect({ port: cluster.nodes[i].port });
      clients.push(c);
      assert.equal(await c.login(who), ErrorCode.OK);
      return c;
    };
    const alice = await on(0, "alice");
    await on(1, "bob");
    for (let i = 0; i < 5; i++) {
      alice.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: `m${i}` });
      assert.equal(await alice.nextError(), ErrorCode.OK);
    }
    alice.send({ op: Op.SPM, sender: "alice", recipient: "nobody", message: "?" });
    assert.equal(await alice.nextError(), ErrorCode.UnreachableUser);
    const m = await scrape(cluster.nodes[0].adminPort);
    assert.equal(m.get('chatos_relay_sends_total{result="delivered"}'), 5);
    assert.equal(m.get('chatos_relay_sends_total{result="unreachable"}'), 1);
    assert.equal(m.get("chatos_relay_send_seconds_count"), 6, "each answered send is timed");
    assert.equal(m.get('chatos_relay_routes_total{result="miss"}'), 2, "bob once, nobody once");
    assert.equal(m.get('chatos_relay_routes_total{result="hit"}'), 4, "bob's route then known");
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
});

/** What the drain scenario needs of a node: where it listens and how to stop it. */
interface Drainable {
  port: number;
  adminPort: number;
  readonly running: boolean;
  /** Sends SIGTERM now; resolves with the exit status. */
  stop(): Promise<Deno.CommandStatus>;
}

async function readyz(adminPort: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  return { status: r.status, body: await r.text() };
}

/**
 * SIGTERM lands while alice has SPMs in flight and bob's unread output holds
 * the drain open. Every request gets exactly one answer: OK before the drain
 * began, ERROR 9 after (never OK again); every acknowledged message reaches
 * bob, once, in order, and no refused one does; the node exits 0 once bob has
 * read everything. `whileDraining` runs while the node still drains.
 */
async function drainUnderLoad(node: Drainable, whileDraining: () => Promise<void>) {
  const bob = await HeldReader.login(node.port, "bob");
  const alice = await ChatClient.connect({ port: node.port });
  try {
    assert.equal(await alice.login("alice"), ErrorCode.OK);
    const fill = await holdOutput(alice, "alice", "bob", queuedOn(node.adminPort));
    const acked: number[] = [], refused: number[] = [];
    let exit: Promise<Deno.CommandStatus> | null = null;
    let seq = 0;
    for (let window = 0; refused.length === 0; window++) {
      assert.ok(window < 2000, "the node never refused new work after SIGTERM");
      const first = seq;
      for (let i = 0; i < 50; i++) {
        alice.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: `m${seq++}` });
      }
      if (exit === null) {
        // The first window is on the wire, none of it answered, when the signal is sent.
        await alice.flush();
        exit = node.stop();
      }
      for (let i = first; i < seq; i++) {
        const code = await alice.nextError(10_000);
        if (code === ErrorCode.OK) {
          assert.equal(
            refused.length,
            0,
            `m${i} acknowledged after a refusal: drain took new work`,
          );
          acked.push(i);
        } else if (code === ErrorCode.ServiceUnavailable) {
          refused.push(i);
        } else {
          assert.fail(`m${i}: ERROR ${code}; a draining node answers OK or ERROR 9`);
        }
      }
    }
    // bob has read nothing yet: the node is still draining
    assert.ok(node.running, "bob's unread output holds the drain");
    assert.deepEqual(await readyz(node.adminPort), { status: 503, body: "draining\n" });
    await whileDraining();
    const frames = await bob.readToEnd(30_000);
    const status = await exit!;
    assert.equal(status.code, 0, "clean exit");
    const spms = frames.filter((f) => f.op === Op.SPM).map((f) =>
      (f as { message: string }).message
    );
    assert.equal(spms.filter((m) => m === FILL_MESSAGE).length, fill, "the fill reached bob");
    assert.deepEqual(
      spms.filter((m) => m !== FILL_MESSAGE).map((m) => Number(m.slice(1))),
      acked,
      `every acknowledged message reached bob once, in order, and no refused one (${refused.length} refused)`,
    );
    // exactly one answer per request: nothing else was waiting for alice
    await alice.closed;
    await assert.rejects(alice.next(100), /server closed/);
  } finally {
    alice.close();
    bob.close();
  }
}

t(
  "SIGTERM under load (one node): one answer per request, every acknowledged message delivered, exit 0",
  async () => {
    const node = await startNode(["--drain-timeout-ms=30000", "--max-queued-bytes=67108864"]);
    try {
      await drainUnderLoad({
        port: node.port,
        adminPort: node.adminPort,
        get running() {
          return node.running;
        },
        stop() {
          node.signal("SIGTERM");
          return node.status;
        },
      }, () => Promise.resolve());
    } finally {
      node.signal("SIGKILL");
      await node.status;
    }
  },
);

t(
  "SIGTERM under load (cluster): the same, and the pseudos are free elsewhere while the node drains",
  async () => {
    const cluster = await startCluster({
      nodes: 2,
      haproxy: false,
      nodeArgs: ["--drain-timeout-ms=30000", "--max-queued-bytes=67108864"],
    });
    const others: ChatClient[] = [];
    try {
      const n1 = cluster.nodes[0];
      await drainUnderLoad({
        port: n1.port,
        adminPort: n1.adminPort,
        get running() {
          return n1.running;
        },
        stop: () => n1.kill("SIGTERM"),
      }, async () => {
        for (const name of ["alice", "bob"]) {
          const c = await ChatClient.connect({ port: cluster.nodes[1].port });
          others.push(c);
          // Draining began (alice saw ERROR 9) just before the node released its users in Redis.
          await eventually(
            async () => (await c.login(name)) === ErrorCode.OK,
            2500,
            `${name} free on node-2 while node-1 drains, before its 3 s lease could lapse`,
          );
        }
      });
    } finally {
      for (const c of others) c.close();
      await cluster.stop();
    }
  },
);

t(
  "draining: SPM, SMA, TCPAsk and CR get ERROR 9, nothing is relayed, /readyz is 503, no new connection",
  () =>
    withServer({ adminPort: 0, maxQueuedBytes: 64 << 20 }, async (h) => {
      const sink = await HeldReader.login(h.port, "sink");
      try {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const idle = await h.connect();
        await holdOutput(alice, "alice", "sink", () =>
          Promise.resolve([...h.server.context.outbound].reduce((n, q) =>
            n + q.pending, 0)));
        const closing = h.server.close(30_000);
        alice.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: "late" });
        assert.equal(await alice.nextError(), ErrorCode.ServiceUnavailable, "SPM");
        alice.send({ op: Op.SMA, sender: "alice", message: "late" });
        assert.equal(await alice.nextError(), ErrorCode.ServiceUnavailable, "SMA");
        alice.send({ op: Op.TCPAsk, sender: "alice", recipient: "bob", password: 1 });
        assert.equal(await alice.nextError(), ErrorCode.ServiceUnavailable, "TCPAsk");
        assert.equal(await idle.login("late"), ErrorCode.ServiceUnavailable, "CR");
        assert.deepEqual(await readyz(h.server.adminPort), { status: 503, body: "draining\n" });
        await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: h.port }));
        await bob.expectSilence(200);
        sink.close(); // the drain was waiting for it
        await closing;
      } finally {
        sink.close();
      }
    }),
);

t("bad configuration exits non-zero with a message before listening", async () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [["--port", "seventy"], {}, /--port: "seventy" is not a whole number/],
    [["--port", "70000"], {}, /--port: 70000 is above 65535/],
    [[], { CHATOS_PORT: "-5" }, /CHATOS_PORT: -5 is below 0/],
    [["--presence", "etcd"], {}, /--presence: "etcd" is not one of memory, redis/],
    [["--log-level", "loud"], {}, /--log-level/],
    [["--presence", "redis"], {}, /--cluster-secret/],
    [["--bogus"], {}, /bogus/],
    // A negative number is the flag's value, refused by its range, not a flag of its own.
    [["--max-connections", "-5"], {}, /^chatos: --max-connections: -5 is below 1\n/],
    [
      ["--presence", "redis", "--cluster-secret", "s".repeat(31)],
      {},
      /^chatos: the cluster secret \(--cluster-secret or CHATOS_CLUSTER_SECRET\) is only 31 bytes: --presence redis needs at least 32 random bytes, the same on every node \(e\.g\. openssl rand -hex 32\)\n/,
    ],
    [
      ["--presence", "redis"],
      { CHATOS_CLUSTER_SECRET: "change-me-to-a-long-random-secret" },
      /^chatos: the cluster secret .* is a placeholder from an example, not a secret: /,
    ],
  ];
  for (const [args, env, expected] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/server/main.ts", ...args],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.notEqual(out.code, 0, `${args} ${JSON.stringify(env)}`);
    assert.match(stderr, expected);
    assert.doesNotMatch(stderr, /"msg":"listening"/, "refused before listening");
    assert.doesNotMatch(
      stderr,
      /s{31}|Did you forget/,
      "the secret is not repeated; no parser jargon",
    );
  }
});

t("--help lists every option with its environment variable and default", () => {
  const text = helpText();
  const lines = text.split("\n");
  for (const o of OPTIONS) {
    const line = lines.find((l) => l.trimStart().startsWith(`--${o.flag} `));
    assert.ok(line, `--${o.flag} is listed`);
    const words = line.trim().split(/\s+/);
    assert.equal(words[1], o.env, `--${o.flag}'s environment variable`);
    if (o.default === "") {
      // No `default ""`: the description says what an unset option means.
      assert.equal(words.length, 2, `--${o.flag} shows no empty default`);
      continue;
    }
    assert.equal(words[2], "default", `--${o.flag} names its default`);
    assert.equal(words[3], o.default, `--${o.flag}'s default`);
  }
  assert.deepEqual(parseConfig(["--help"]), { help: true });
  return Promise.resolve();
});

/** README's configuration table: flag → [environment variable, default as written]. */
async function readmeOptions(): Promise<Map<string, [string, string]>> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const rows = new Map<string, [string, string]>();
  for (const line of readme.split("\n")) {
    const m = line.match(/^\| `--([a-z-]+)`\s*\| `([A-Z_]+)`\s*\| ([^|]+?)\s*\|/);
    if (m) rows.set(m[1], [m[2], m[3]]);
  }
  return rows;
}

t(
  "flags win over environment variables, which win over defaults; the defaults are README's",
  async () => {
    const env = (n: string) =>
      ({ CHATOS_PORT: "9000", CHATOS_LOG_LEVEL: "debug" } as Record<string, string>)[n];
    const r = parseConfig(["--port", "9001"], env);
    assert.ok(!r.help);
    if (r.help) return;
    assert.equal(r.config.port, 9001, "flag over environment");
    assert.equal(r.config.logLevel, "debug", "environment over default");
    // every other option has the default README documents
    const documented = await readmeOptions();
    const bare = parseConfig([], () => undefined);
    assert.ok(!bare.help);
    if (bare.help) return;
    for (const o of OPTIONS) {
      const row = documented.get(o.flag);
      assert.ok(row, `README documents --${o.flag}`);
      assert.equal(row[0], o.env, `--${o.flag}'s environment variable`);
      const literal = row[1].match(/^`([^`]*)`/)?.[1];
      const value: unknown = bare.config[o.key];
      if (literal === undefined) {
        // "random", "the hostname", "none": decided at start-up, not by the parser
        assert.equal(value, "", `--${o.flag}: README says ${row[1]}`);
      } else {
        assert.equal(String(value), literal, `--${o.flag}'s default`);
        if (o.key !== "port" && o.key !== "logLevel") {
          assert.equal(r.config[o.key], value, `--${o.flag} untouched by other flags`);
        }
      }
    }
  },
);

/** A node whose drain is held open: output queued for a sink that never reads. */
async function withHeldDrain(drainMs: number, fn: (node: NodeProcess) => Promise<void>) {
  const node = await startNode([`--drain-timeout-ms=${drainMs}`, "--max-queued-bytes=67108864"]);
  const flooder = await ChatClient.connect({ port: node.port });
  const sink = await HeldReader.login(node.port, "sink");
  try {
    assert.equal(await flooder.login("flooder"), ErrorCode.OK);
    await holdOutput(flooder, "flooder", "sink", queuedOn(node.adminPort));
    await fn(node);
  } finally {
    flooder.close();
    sink.close();
    node.signal("SIGKILL");
    await node.status;
  }
}

t(
  "SIGTERM waits for a reader that never reads until the drain deadline, then exits 0",
  () =>
    withHeldDrain(1500, async (node) => {
      const started = Date.now();
      node.signal("SIGTERM");
      const status = await withDeadline(
        node.status,
        20_000,
        () => new Error("the drain outlived its 1.5 s deadline by far"),
      );
      const waited = Date.now() - started;
      assert.equal(status.code, 0);
      assert.ok(waited >= 1500, `exited after ${waited} ms: the drain did not wait for the reader`);
      assert.match(node.stderr(), /drain deadline passed with output queued/);
    }),
);

t(
  "a second signal during the drain exits at once, non-zero; a copy within the grace does not",
  () =>
    withHeldDrain(60_000, async (node) => {
      node.signal("SIGTERM");
      await node.waitForLine(/"msg":"shutting down"/);
      // What `deno task` does on Ctrl-C: the same signal again, a moment later. One stop.
      node.signal("SIGINT");
      await node.waitForLine(
        /"msg":"signal again within the grace: the same stop, still draining"/,
      );
      assert.equal((await readyz(node.adminPort)).status, 503, "still draining, held by the sink");
      assert.ok(node.running, "a copy of the first signal did not end the drain");
      await node.waitForLine(/"msg":"still draining; a second signal now exits at once"/, 5000);
      node.signal("SIGTERM");
      const status = await withDeadline(
        node.status,
        20_000,
        () => new Error("the second signal did not end a 60 s drain"),
      );
      assert.notEqual(status.code, 0, "the second signal is an abrupt exit");
      assert.match(node.stderr(), /second signal: exiting at once/);
    }),
);

t(
  "message bodies never reach the logs, even at debug level, on one node or across two",
  async () => {
    const redis = await startRedis();
    const secret = crypto.randomUUID() + crypto.randomUUID();
    const nodes: NodeProcess[] = [];
    const clients: ChatClient[] = [];
    try {
      for (const id of ["logs-1", "logs-2"]) {
        nodes.push(
          await startNode([...redisNodeArgs(redis.url, id, secret), "--log-level=debug"]),
        );
      }
      const [n1, n2] = nodes;
      const login = async (port: number, pseudo: string) => {
        const c = await ChatClient.connect({ port });
        clients.push(c);
        assert.equal(await c.login(pseudo), ErrorCode.OK, pseudo);
        return c;
      };
      const alice = await login(n1.port, "alice");
      const bob = await login(n1.port, "bob");
      const carol = await login(n2.port, "carol");
      const body = (what: string) => `BODY-${what}-${crypto.randomUUID()}`;
      const bodies = [body("local"), body("remote"), body("nobody"), body("sma")];
      const spmTo = async (to: string, message: string, code: number) => {
        alice.send({ op: Op.SPM, sender: "alice", recipient: to, message });
        assert.equal(await alice.nextError(3000), code, to);
      };
      await spmTo("bob", bodies[0], ErrorCode.OK);
      assert.equal(((await bob.next()) as { message: string }).message, bodies[0]);
      await spmTo("carol", bodies[1], ErrorCode.OK);
      assert.equal(((await carol.next()) as { message: string }).message, bodies[1]);
      await spmTo("nobody", bodies[2], ErrorCode.UnreachableUser);
      alice.send({ op: Op.SMA, sender: "alice", message: bodies[3] });
      assert.equal(await alice.nextError(3000), ErrorCode.OK);
      for (const c of [bob, carol]) {
        assert.equal(((await c.next()) as { message: string }).message, bodies[3]);
      }
      // bytes over a private link bridged from node 1 to node 2
      let turn = 0;
      const { endA, endB } = await openLink(
        {
          get port() {
            return nodes[turn++ % 2].port;
          },
        },
        alice,
        carol,
        4242,
        { a: "alice", b: "carol" },
      );
      const linkBody = body("link");
      bodies.push(linkBody);
      await endA.write(new TextEncoder().encode(linkBody));
      let seen = "";
      while (seen.length < linkBody.length) seen += new TextDecoder().decode((await endB.read())!);
      assert.equal(seen, linkBody);
      endA.close();
      endB.close();
      // a malformed frame carrying a body: the log names the reason, not the bytes
      const mallory = await login(n1.port, "mallory");
      const malformed = body("malformed");
      bodies.push(malformed);
      const m = new TextEncoder().encode(malformed);
      mallory.sendRaw(
        new Uint8Array([
          ...encode({ op: Op.SMA, sender: "mallory", message: "x" }).subarray(0, 10),
          0,
          m.length + 2,
          ...m,
          0xc3,
          0x28,
        ]),
      );
      await mallory.closed;
      await n1.waitForLine(/"msg":"malformed frame, closing"/);
      for (const n of nodes) n.signal("SIGTERM");
      for (const n of nodes) assert.equal((await n.status).code, 0);
      const logs = nodes.map((n) => n.stderr()).join("\n");
      // the capture worked, at debug level
      assert.match(logs, /"level":"debug"/);
      assert.match(logs, /"msg":"login".*"pseudo":"carol"/);
      assert.match(logs, /"msg":"private link opened"/);
      for (const b of bodies) {
        assert.ok(!logs.includes(b), `a message body reached the logs: ${b}`);
        const bytes = [...new TextEncoder().encode(b.slice(0, 12))].join(",");
        assert.ok(!logs.includes(bytes), `a message body reached the logs as bytes: ${b}`);
      }
    } finally {
      for (const c of clients) c.close();
      for (const n of nodes) n.signal("SIGKILL");
      await Promise.all(nodes.map((n) => n.status));
      await redis.stop();
    }
  },
);
