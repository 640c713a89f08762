/** The directory's contract: who holds which pseudonym, on every node (presence.ts, Directory). */
import assert from "node:assert/strict";
import { bareClaim } from "../../src/presence/presence.ts";
import { RecordingInbox } from "../helpers/presence_node.ts";
import { uniq as name } from "../helpers/presence_testkit.ts";
import type { ContractTest } from "./mod.ts";

export function directoryContract(test: ContractTest): void {
  test("a pseudo is reserved once across nodes; release frees it", 2, async ([p, q]) => {
    const alice = name("alice");
    assert.equal(await p.directory.reserve(alice, bareClaim(alice)), "ok");
    assert.equal(await q.directory.reserve(alice, bareClaim(alice)), "taken");
    await p.directory.release(alice);
    assert.equal(await q.directory.reserve(alice, bareClaim(alice)), "ok");
  });

  // Run on one node, and on two sharing a backend (the second answers for the first's users).
  // Through the nodes' logins, as sessions do: on Redis Cluster a name key names its node, and two
  // pseudos of one node that share a key are told apart by the node (LocalUsers).
  for (const count of [1, 2]) {
    test(
      `a claim's keys are held all together and released together (${count} node)`,
      count,
      async (nodes) => {
        const p = nodes[0], q = nodes[count - 1];
        const alice = name("alice"), lookalike = name("Alice"), other = name("x");
        const k1 = name("k1"), k2 = name("k2"), k3 = name("k3");
        const ia = new RecordingInbox(), il = new RecordingInbox(), io = new RecordingInbox();
        assert.equal(await p.login(alice, ia, { keys: [k1, k2], client: "10.0.0.1" }), "ok");
        // Another display name with any key of alice's is refused, from any node.
        assert.equal(await q.login(lookalike, il, { keys: [k3, k2], client: "10.0.0.2" }), "taken");
        assert.equal(await q.login(lookalike, il, { keys: [k1], client: "10.0.0.2" }), "taken");
        // All or nothing: the refused login took neither k3 nor the display name.
        assert.equal(await p.login(other, io, { keys: [k3], client: "10.0.0.3" }), "ok");
        await p.logout(other, io);
        assert.equal(await q.directory.clientOf(lookalike), null);
        await p.logout(alice, ia);
        assert.equal(await q.login(lookalike, il, { keys: [k3, k2], client: "10.0.0.2" }), "ok");
        assert.equal(await p.login(alice, ia, { keys: [k1, k2], client: "10.0.0.1" }), "taken");
        assert.equal(await p.login(alice, ia, { keys: [k1], client: "10.0.0.1" }), "ok");
      },
    );

    test(`clientOf answers the client key a user logged in with (${count} node)`, count, async (
      nodes,
    ) => {
      const p = nodes[0].directory, q = nodes[count - 1].directory;
      const u = name("u");
      assert.equal(await q.clientOf(u), null);
      assert.equal(await p.reserve(u, { keys: [name("ku")], client: "192.0.2.7" }), "ok");
      assert.equal(await p.clientOf(u), "192.0.2.7");
      assert.equal(await q.clientOf(u), "192.0.2.7");
      await p.release(u);
      assert.equal(await p.clientOf(u), null);
      assert.equal(await q.clientOf(u), null);
    });
  }

  test("pseudos with separators and unicode stay distinct", 1, async ([n]) => {
    const u = name("é:ü");
    assert.equal(await n.directory.reserve(u + ":x", { keys: [u + ":x"], client: "c1" }), "ok");
    assert.equal(await n.directory.reserve(u, { keys: [u], client: "c2" }), "ok");
    await n.directory.release(u + ":x");
    assert.equal(await n.directory.clientOf(u + ":x"), null);
    assert.equal(await n.directory.clientOf(u), "c2", "only u:x was released");
  });

  test("a release by a node that does not hold the pseudo changes nothing", 2, async ([p, q]) => {
    const a = name("a");
    assert.equal(await p.directory.reserve(a, bareClaim(a)), "ok");
    await q.directory.release(a);
    assert.equal(await q.directory.reserve(a, bareClaim(a)), "taken");
  });

  test("close releases this node's pseudos", 2, async ([p, q]) => {
    const a = name("a");
    assert.equal(await p.login(a), "ok");
    assert.equal(await q.login(a), "taken");
    await p.close();
    assert.equal(await q.login(a), "ok");
  });

  test("across nodes: logins of one pseudo are exclusive", 3, async (nodes) => {
    const a = name("race");
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => nodes[i % 3].login(a)),
    );
    assert.equal(results.filter((r) => r === "ok").length, 1);
    assert.equal(results.filter((r) => r === "taken").length, 29);
  });

  test("a login through the node's users is what the directory holds", 2, async ([p, q]) => {
    const a = name("a");
    const inbox = new RecordingInbox();
    assert.equal(await p.login(a, inbox, { keys: [a], client: "198.51.100.1" }), "ok");
    assert.equal(await q.directory.clientOf(a), "198.51.100.1");
    assert.equal(await q.login(a), "taken");
    await p.logout(a, inbox);
    assert.equal(await q.directory.clientOf(a), null);
    assert.equal(await q.login(a), "ok");
  });
}
