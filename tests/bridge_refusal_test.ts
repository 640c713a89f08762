/**
 * Two nodes whose cluster secrets differ: the bridge between them is refused.
 * Each node logs what it can know under its own name, and the two users read
 * a plain sentence: no function name, no frame, no link password.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { CliProcess } from "./helpers/client_fixtures.ts";
import { type NodeProcess, redisNodeArgs, startNode } from "./helpers/node_process.ts";
import { startRedis } from "./helpers/redis_server.ts";

/** What a user must never be shown. */
const INTERNALS = /answer\(\)|next\(\)|TCPAbort|TCPAccept|TCPConnect|password|\bat .*\.ts:\d+/;

Deno.test("bridge refused (secrets differ): both nodes log why under their own names; users read a sentence", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "chatos-refusal-" });
  const nodes: NodeProcess[] = [];
  const clis: CliProcess[] = [];
  try {
    for (const [id, secret] of [["node-1", "a"], ["node-2", "b"]]) {
      nodes.push(
        await startNode(redisNodeArgs(redis.url, id, secret.repeat(40))),
      );
    }
    const [n1, n2] = nodes;
    await Deno.mkdir(path.join(dir, "share"));
    await Deno.writeTextFile(path.join(dir, "share", "notes.txt"), "notes");
    const cli = (name: string, port: number, extra: string[] = []) => {
      const c = new CliProcess(name, [name, "127.0.0.1", String(port), ...extra], { cwd: dir });
      clis.push(c);
      return c;
    };
    const bob = cli("bob", n2.port, ["--share", "share"]);
    const alice = cli("alice", n1.port);
    await bob.waitFor(/^connected/);
    await alice.waitFor(/^connected/);

    await alice.type("/bob notes.txt");
    await alice.waitFor(
      /^could not fetch notes\.txt from bob: the server could not connect you \(the request expired or was cancelled, or the servers could not reach each other\)\. Try again: \/get bob notes\.txt; if it keeps failing, tell the server's operator$/,
    );
    await bob.waitFor(
      /^could not answer alice's request: the request was cancelled before the private connection opened; nothing was sent, alice can ask again$/,
    );
    for (const c of [alice, bob]) assert.doesNotMatch(c.output, INTERNALS, c.name);
    assert.doesNotMatch(alice.output, /aborted/, "one line says what happened, not two");

    // The receiving node knows the HMAC did not check; the dialing node, that it was refused.
    const refused = JSON.parse(await n2.waitForLine(/"msg":"bridge greeting refused"/));
    assert.equal(refused.node, "node-2");
    assert.equal(refused.from, "127.0.0.1");
    assert.equal(refused.reason, "bad HMAC: cluster secret mismatch?");
    const dial = JSON.parse(await n1.waitForLine(/"msg":"bridge dial failed"/));
    assert.equal(dial.node, "node-1", "the line is the dialing node's");
    assert.equal(dial.peer, "node-2");
    assert.equal(
      dial.error,
      "node-2 closed the bridge without answering: it refused the greeting (cluster secret mismatch?)",
    );
  } finally {
    await Promise.all(clis.map((c) => c.dispose()));
    for (const n of nodes) n.signal("SIGKILL");
    await Promise.all(nodes.map((n) => n.status));
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
