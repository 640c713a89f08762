/**
 * The node behind a real haproxy sending `send-proxy-v2`, with
 * `--proxy-protocol` on: each client's real address (distinct loopback
 * sources) reaches the logs, the link guard and the limits, so one client's
 * junk does not stop anyone else's links. A trusted peer without a header, and
 * an untrusted peer with one, are closed; /readyz (the admin port) needs none.
 */
import assert from "node:assert/strict";
import { ErrorCode, type Frame, Op } from "../src/protocol/mod.ts";
import { Logger } from "../src/lib/log.ts";
import { startServer } from "../src/server/server.ts";
import { freePort, spawnChild, waitForPort } from "../src/ops/processes.ts";
import { eventually } from "./helpers/harness.ts";
import { SourcedClient } from "./helpers/sourced_client.ts";

const pair = { sender: "alice", recipient: "bob" } as const;

Deno.test({
  name: "behind haproxy send-proxy-v2: real client addresses in logs and link guard",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = new Logger("info", {}, (line) => lines.push(JSON.parse(line)));
    // Only haproxy's own address is trusted: other loopback sources are direct clients.
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      adminPort: 0,
      proxyProtocol: true,
      proxyTrusted: "127.0.0.1/32",
    }, { logger });
    const lbPort = freePort();
    const dir = await Deno.makeTempDir({ prefix: "chatos-pp-e2e-" });
    await Deno.writeTextFile(
      `${dir}/haproxy.cfg`,
      [
        "defaults",
        "  mode tcp",
        "  timeout connect 2s",
        "  timeout client 1h",
        "  timeout server 1h",
        "frontend chat",
        `  bind 127.0.0.1:${lbPort}`,
        "  default_backend node",
        "backend node",
        `  server n 127.0.0.1:${server.port} send-proxy-v2`,
        "",
      ].join("\n"),
    );
    const lb = spawnChild("haproxy", ["-f", `${dir}/haproxy.cfg`, "-db"]);
    let exited = false;
    void lb.status.then(() => (exited = true));
    const clients: SourcedClient[] = [];
    const via = async (from: string, port = lbPort) => {
      const c = await SourcedClient.connect(port, from);
      clients.push(c);
      return c;
    };
    const login = async (name: string, from: string) => {
      const c = await via(from);
      c.send({ op: Op.CR, pseudo: name });
      assert.deepEqual(await c.next(), { op: Op.ERROR, code: ErrorCode.OK });
      return c;
    };
    try {
      await waitForPort(lbPort, 15_000, () => !exited);
      const alice = await login("alice", "127.0.0.7");
      const bob = await login("bob", "127.0.0.8");
      const logins = lines.filter((l) => l.msg === "login");
      assert.deepEqual(logins.map((l) => [l.pseudo, l.address]), [
        ["alice", "127.0.0.7"],
        ["bob", "127.0.0.8"],
      ]);

      // Junk from a third client, through the same haproxy: far past the per-address limit.
      for (let i = 0; i < 30; i++) {
        const junk = await via("127.0.0.66");
        junk.send({ op: Op.TCPConnect, ...pair, password: i });
        assert.deepEqual((await junk.rest())[0], {
          op: Op.ERROR,
          code: ErrorCode.TcpNotInProtocol,
        });
      }
      const refusals = lines.filter((l) => String(l.msg).startsWith("link attempt refused"));
      assert.ok(refusals.length > 0 && refusals.every((l) => l.address === "127.0.0.66"));

      // Alice and Bob still link, three times, every socket through haproxy.
      for (const password of [1, 2, 3]) {
        alice.send({ op: Op.TCPAsk, ...pair, password });
        assert.deepEqual(await alice.next(), { op: Op.ERROR, code: ErrorCode.OK });
        assert.deepEqual(await bob.next(), { op: Op.TCPAsk, ...pair, password });
        const endB = await via("127.0.0.8");
        endB.send({ op: Op.TCPAccept, ...pair, password });
        assert.deepEqual(await alice.next(), { op: Op.TCPAccept, ...pair, password });
        const endA = await via("127.0.0.7");
        endA.send({ op: Op.TCPConnect, ...pair, password });
        assert.deepEqual(await endA.next(), { op: Op.ERROR, code: ErrorCode.OK });
        assert.deepEqual(await endB.next(), { op: Op.ERROR, code: ErrorCode.OK });
        // The link copies bytes unchanged: send a frame's bytes as data.
        const payload: Frame = { op: Op.SMA, sender: "x", message: `link ${password}` };
        endA.send(payload);
        assert.deepEqual(await endB.next(), payload);
        endA.close();
        endB.close();
      }

      const metrics = server.context.metrics;
      // A trusted peer (127.0.0.1, haproxy's address) without a header is closed.
      const bare = await via("127.0.0.1", server.port);
      bare.send({ op: Op.CR, pseudo: "carol" });
      assert.deepEqual(await bare.rest(), []);
      assert.equal(metrics.proxyHeaderRefused, 1);
      assert.ok(
        lines.some((l) => l.msg === "connection refused: PROXY header" && l.peer === "127.0.0.1"),
      );
      // An untrusted peer is read as ChatOS: a header from it is a malformed frame.
      const forger = await via("127.0.0.5", server.port);
      const before = metrics.malformedFrames;
      const sneaky = new TextEncoder().encode("PROXY TCP4 10.9.9.9 127.0.0.1 1 2\r\n");
      await forger.writeRaw(sneaky);
      assert.deepEqual(await forger.rest(), []);
      await eventually(() => metrics.malformedFrames === before + 1, 3000, "malformed count");
      // The untrusted client without a header is served directly, under its own address.
      await login("dave", "127.0.0.5");
      await eventually(() => lines.some((l) => l.msg === "login" && l.address === "127.0.0.5"));

      // Health checks go to the admin port, which takes no header.
      const ready = await fetch(`http://127.0.0.1:${server.adminPort}/readyz`);
      assert.equal(ready.status, 200);
      await ready.body?.cancel();
    } finally {
      for (const c of clients) c.close();
      try {
        lb.kill("SIGTERM");
      } catch { /* gone */ }
      await lb.status;
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
