/**
 * Ctrl-C as a user presses it: `deno task serve` in an interactive shell on a
 * pseudo-terminal. The terminal signals the task runner and the node alike,
 * and the runner forwards its copy: still one graceful stop.
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import { ErrorCode, Op } from "../src/protocol/mod.ts";
import { StopSignals } from "../src/server/signals.ts";
import { HeldReader, holdOutput, queuedOn } from "./helpers/held_reader.ts";
import { redisNodeArgs, startNode } from "./helpers/node_process.ts";
import { PtyShell } from "./helpers/pty_shell.ts";
import { freePort, redisCli, startRedis } from "./helpers/redis_server.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("signals: copies within the grace are the first signal's act; one after it exits", () => {
  let now = 0;
  const s = new StopSignals(1000, () => now);
  assert.equal(s.receive(), "stop");
  now = 2;
  assert.equal(s.receive(), "same", "deno task's forwarded copy");
  now = 999;
  assert.equal(s.receive(), "same");
  now = 1000;
  assert.equal(s.receive(), "exit", "a separate act");
});

Deno.test("serve: one Ctrl-C in an interactive shell drains, says stopped, and leaves no user key in Redis", async () => {
  const redis = await startRedis();
  const shell = new PtyShell({
    cwd: ROOT,
    env: { CHATOS_CLUSTER_SECRET: crypto.randomUUID() + crypto.randomUUID() },
  });
  const clients: Array<{ close(): void }> = [];
  try {
    const port = freePort(), adminPort = freePort(), bridgePort = freePort();
    await shell.type(
      `${Deno.execPath()} task serve --host 127.0.0.1 --port ${port} --admin-port ${adminPort}` +
        ` --presence redis --redis-url ${redis.url} --node-id ctrl-c --bridge-host 127.0.0.1` +
        ` --bridge-port ${bridgePort} --advertise-host 127.0.0.1 --drain-timeout-ms 3000 --max-queued-bytes 67108864;` +
        ` echo "serve exited $?"`,
    );
    await shell.waitFor(/"msg":"listening"/, 30_000);
    const flooder = await ChatClient.connect({ port });
    clients.push(flooder);
    assert.equal(await flooder.login("flooder"), ErrorCode.OK);
    const sink = await HeldReader.login(port, "sink");
    clients.push(sink);
    // The sink reads nothing: the drain lasts its whole 3 s, long past any copy of the signal.
    await holdOutput(flooder, "flooder", "sink", queuedOn(adminPort));
    assert.match(await redisCli(redis.port, "GET", "chatos:user:sink"), /ctrl-c/);

    await shell.ctrlC();
    await shell.waitFor(/"msg":"shutting down"[^\n]*"signal":"SIGINT"/);
    await shell.waitFor(/"msg":"drain deadline passed with output queued"/, 10_000);
    await shell.waitFor(/"msg":"stopped"/);
    await shell.waitFor(/serve exited 0/);
    assert.doesNotMatch(shell.text, /second signal: exiting at once/);
    assert.equal(
      (await redisCli(redis.port, "--scan", "--pattern", "chatos:*")).trim(),
      "",
      "every key of the node released",
    );
  } finally {
    for (const c of clients) c.close();
    await shell.close();
    await redis.stop();
  }
});

Deno.test("serve: a clean stop with a handshake pending logs no warning (Redis mode)", async () => {
  const redis = await startRedis();
  const node = await startNode(redisNodeArgs(redis.url, "calm", "c".repeat(40)));
  const clients: ChatClient[] = [];
  try {
    for (const name of ["alice", "bob"]) {
      const c = await ChatClient.connect({ port: node.port });
      clients.push(c);
      assert.equal(await c.login(name), ErrorCode.OK);
    }
    const [alice, bob] = clients;
    alice.send({ op: Op.TCPAsk, sender: "alice", recipient: "bob", password: 5 });
    assert.equal(await alice.nextError(), ErrorCode.OK);
    assert.equal((await bob.next()).op, Op.TCPAsk, "pending: bob was asked");
    node.signal("SIGTERM");
    assert.equal((await node.status).code, 0);
    assert.match(node.stderr(), /"msg":"stopped"/);
    const warnings = node.stderr().split("\n").filter((l) => /"level":"(warn|error)"/.test(l));
    assert.deepEqual(warnings, [], "nothing went wrong: nothing to warn about");
  } finally {
    for (const c of clients) c.close();
    node.signal("SIGKILL");
    await node.status;
    await redis.stop();
  }
});
