/**
 * The operator's surface: /metrics, /healthz, /readyz, graceful drain on
 * SIGTERM, and configuration errors, tested on real processes where it matters.
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import { startCluster } from "../src/ops/cluster.ts";
import { encode, ErrorCode, Op } from "../src/protocol/mod.ts";
import { helpText, OPTIONS, parseConfig } from "../src/server/config.ts";
import { eventually, withServer } from "./helpers/harness.ts";

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `ops: ${name}`, fn, sanitizeOps: false, sanitizeResources: false });

/** Parses Prometheus text into "name{labels}" → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return parseMetrics(await res.text());
}

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

t(
  "SIGTERM: exits 0 within the deadline, frees pseudos at once, loses no acknowledged message",
  async () => {
    const cluster = await startCluster({
      nodes: 2,
      haproxy: false,
      nodeArgs: ["--drain-timeout-ms=3000"],
    });
    const clients: ChatClient[] = [];
    try {
      const [n1, n2] = cluster.nodes;
      const connect = async (port: number) => {
        const c = await ChatClient.connect({ port });
        clients.push(c);
        return c;
      };
      const a = await connect(n1.port), b = await connect(n1.port);
      assert.equal(await a.login("alice"), 1);
      assert.equal(await b.login("bob"), 1);
      const N = 3000;
      for (let i = 0; i < N; i++) {
        a.send({
          op: Op.SPM,
          sender: "alice",
          recipient: "bob",
          message: `${i}`,
        });
      }
      await a.flush();
      const started = Date.now();
      const exit = n1.kill("SIGTERM");
      // count what alice had acknowledged, and what bob received, until the node closes them
      let acked = 0;
      const refused: number[] = [];
      for (let i = 0; i < N; i++) {
        let code: number;
        try {
          code = await a.nextError(5000);
        } catch {
          break;
        }
        if (code === ErrorCode.OK) acked++;
        else refused.push(code);
      }
      const received: string[] = [];
      while (true) {
        try {
          received.push(((await b.next(5000)) as { message: string }).message);
        } catch {
          break;
        }
      }
      const status = await exit;
      assert.equal(status.code, 0, "clean exit");
      assert.ok(Date.now() - started < 3000 + 2000, "within the drain deadline");
      assert.ok(refused.every((c) => c === ErrorCode.ServiceUnavailable), `refusals: ${refused}`);
      assert.ok(received.length >= acked, `acked ${acked}, received ${received.length}`);
      assert.deepEqual(received.slice(0, acked), [...Array(acked).keys()].map(String), "in order");
      const other = await connect(n2.port);
      assert.equal(await other.login("alice"), ErrorCode.OK, "released at once");
    } finally {
      for (const c of clients) c.close();
      await cluster.stop();
    }
  },
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
  }
});

t("--help lists every option with its environment variable and default", () => {
  const text = helpText();
  for (const o of OPTIONS) {
    assert.ok(text.includes(`--${o.flag}`), o.flag);
    assert.ok(text.includes(o.env), o.env);
  }
  assert.deepEqual(parseConfig(["--help"]), { help: true });
  return Promise.resolve();
});

t("flags win over environment variables, which win over defaults", () => {
  const env = (n: string) =>
    ({ CHATOS_PORT: "9000", CHATOS_LOG_LEVEL: "debug" } as Record<string, string>)[n];
  const r = parseConfig(["--port", "9001"], env);
  assert.ok(!r.help);
  if (!r.help) {
    assert.equal(r.config.port, 9001);
    assert.equal(r.config.logLevel, "debug");
    assert.equal(r.config.host, "0.0.0.0");
  }
  return Promise.resolve();
});

t(
  "SIGTERM waits for a reader that never reads, up to the deadline; a second signal exits at once",
  async () => {
    const cluster = await startCluster({
      nodes: 1,
      haproxy: false,
      nodeArgs: ["--drain-timeout-ms=30000", "--max-queued-bytes=67108864"],
    });
    const flooder = await ChatClient.connect({ port: cluster.nodes[0].port });
    const sink = await Deno.connect({ hostname: "127.0.0.1", port: cluster.nodes[0].port });
    try {
      await sink.write(encode({ op: Op.CR, pseudo: "sink" }));
      assert.equal(await flooder.login("flooder"), ErrorCode.OK);
      const msg = "z".repeat(32000);
      for (let i = 0; i < 500; i++) {
        flooder.send({ op: Op.SPM, sender: "flooder", recipient: "sink", message: msg });
      }
      for (let i = 0; i < 500; i++) assert.equal(await flooder.nextError(5000), ErrorCode.OK);
      // ~16 MB wait for a reader that does not read: the drain cannot finish
      const started = Date.now();
      const exit = cluster.nodes[0].kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(cluster.nodes[0].running, true, "still draining");
      await cluster.nodes[0].kill("SIGTERM");
      const status = await exit;
      assert.notEqual(status.code, 0, "the second signal is an abrupt exit");
      assert.ok(Date.now() - started < 5000, "well before the 30 s deadline");
    } finally {
      flooder.close();
      sink.close();
      await cluster.stop();
    }
  },
);
