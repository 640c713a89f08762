/** The directory's contract: who holds which pseudonym, on every node (presence.ts, Directory). */
import assert from "node:assert/strict";
import { bareClaim } from "../../src/presence/presence.ts";
import { RecordingInbox } from "../helpers/presence_node.ts";
import { uniq as name } from "../helpers/presence_testkit.ts";
import type { ContractTest } from "./mod.ts";
import type { TestNode } from "../helpers/presence_node.ts";

/** Seen from `n`: each [pseudo, key] is held whole, its client key `client` and its key bound. */
async function holdWhole(n: TestNode, users: string[][], client: string): Promise<void> {
  for (const [u, k] of users) {
    assert.equal(await n.directory.clientOf(u), client, `${u}'s client key`);
    assert.equal(await n.login(`${u}-look`, new RecordingInbox(), { keys: [k], client }), "taken");
  }
}

/** Seen from `n`: nothing of each [pseudo, key] is held (a lookalike gets its key). */
async function leftNothing(n: TestNode, users: string[][]): Promise<void> {
  for (const [u, k] of users) {
    assert.equal(await n.directory.clientOf(u), null, `${u}'s profile is gone`);
    const look = new RecordingInbox();
    assert.equal(await n.login(`${u}-look`, look, { keys: [k], client: "x" }), "ok", `${u}'s key`);
    await n.logout(`${u}-look`, look);
  }
}

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

  // A release and a login of the same pseudo (or of one sharing its keys) on one node, or on two,
  // must not mix: on Redis Cluster each is several steps, and a step of the old one that lands on
  // the new one's keys leaves them unbound (a lookalike gets in) or unlisted (never released).
  test(
    "a login right behind a logout of the same pseudo on one node is whole",
    2,
    async ([p, q]) => {
      const users = Array.from({ length: 20 }, (_, i) => [name(`re${i}`), name(`rek${i}`)]);
      const first = new RecordingInbox(), again = new RecordingInbox();
      for (const [u, k] of users) {
        assert.equal(
          await p.login(u, first, { keys: [k], client: "old" }),
          "ok",
        );
      }
      const logins = users.map(([u, k]) => {
        void p.logout(u, first); // not awaited: the login is issued in the same turn
        return p.login(u, again, { keys: [k], client: "new" });
      });
      assert.deepEqual(await Promise.all(logins), users.map(() => "ok"));
      await holdWhole(q, users, "new");
      for (const [u] of users) await p.logout(u, again);
      await leftNothing(q, users);
    },
  );

  test("a pseudo logged out on one node and in at once on another is whole there", 2, async (
    [p, q],
  ) => {
    const users = Array.from({ length: 40 }, (_, i) => [name(`mv${i}`), name(`mvk${i}`)]);
    const first = new RecordingInbox(), moved = new RecordingInbox();
    for (const [u, k] of users) {
      assert.equal(await p.login(u, first, { keys: [k], client: "p" }), "ok");
    }
    // All at once, as a node's event loop under load interleaves them.
    const released = Promise.all(users.map(([u]) => p.logout(u, first)));
    await Promise.all(users.map(async ([u, k]) => {
      const deadline = Date.now() + 5000;
      while (await q.login(u, moved, { keys: [k], client: "q" }) !== "ok") {
        assert.ok(Date.now() < deadline, `${u} still taken 5 s after its logout`);
      }
    }));
    await released;
    await holdWhole(p, users, "q");
    for (const [u] of users) await q.logout(u, moved);
    await leftNothing(p, users);
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
