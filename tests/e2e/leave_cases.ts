/**
 * End-to-end cases of users leaving: by a clean close or a reset, during a login, with handshakes
 * pending both ways. Each other side hears of every handshake that ended, and the pseudo is free
 * again. On a cluster the harness then demands that Redis holds nothing of them within 2 s
 * (tests/helpers/cluster_harness.ts).
 */
import assert from "node:assert/strict";
import { PrivateEnd } from "../../src/client/client.ts";
import { withDeadline } from "../../src/lib/async.ts";
import { encode, ErrorCode, type Frame, Op } from "../../src/protocol/mod.ts";
import { type ChatHarness, eventually, type RunCase } from "../helpers/harness.ts";
import { RawConn } from "../helpers/from_address.ts";

const ask = (a: string, b: string, password: number): Frame => ({
  op: Op.TCPAsk,
  sender: a,
  recipient: b,
  password,
});
const abort = (a: string, b: string, password: number): Frame => ({
  op: Op.TCPAbort,
  sender: a,
  recipient: b,
  password,
});

/** A new connection logs in as `pseudo` once the node lets go of it (within 3 s). */
async function freeAgain(h: ChatHarness, pseudo: string): Promise<void> {
  const c = await h.connect();
  await eventually(async () => (await c.login(pseudo)) === ErrorCode.OK, 3000, `${pseudo} free`);
}

export function leaveCases(t: RunCase["t"], withServer: RunCase["withServer"]): void {
  t(
    "leave: a reset with handshakes pending both ways aborts them for the other sides, frees the pseudo",
    () =>
      withServer({}, async (h) => {
        const alice = await RawConn.open(h.port, "127.0.0.1");
        try {
          assert.equal(await alice.login("alice"), ErrorCode.OK);
          const bob = await h.login("bob");
          const carol = await h.login("carol");
          alice.send(encode(ask("alice", "bob", 1)));
          assert.deepEqual(await bob.next(), ask("alice", "bob", 1));
          carol.send(ask("carol", "alice", 2));
          assert.equal(await carol.nextError(), ErrorCode.OK);
          alice.socket.resetAndDestroy(); // an RST: the node's read fails (ConnectionReset)
          assert.deepEqual(await bob.next(3000), abort("alice", "bob", 1));
          assert.deepEqual(await carol.next(3000), abort("carol", "alice", 2));
          await freeAgain(h, "alice");
        } finally {
          alice.socket.destroy();
        }
      }),
  );

  t(
    "leave: a close with asks out, one accepted and parked, and an ask in: every other side hears TCPAbort",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const carol = await h.login("carol");
        const dave = await h.login("dave");
        const asked = [["bob", 1, bob], ["carol", 2, carol]] as const;
        for (const [to, pw, them] of asked) {
          alice.send(ask("alice", to, pw));
          assert.equal(await alice.nextError(), ErrorCode.OK);
          assert.deepEqual(await them.next(), ask("alice", to, pw));
        }
        dave.send(ask("dave", "alice", 3));
        assert.equal(await dave.nextError(), ErrorCode.OK);
        assert.deepEqual(await alice.next(), ask("dave", "alice", 3));
        // On a cluster this connection lands on bob's node, which hears the TCPAbort for bob.
        const endB = await PrivateEnd.open(
          { port: h.port },
          { op: Op.TCPAccept, sender: "alice", recipient: "bob", password: 1 },
        );
        assert.equal((await alice.next()).op, Op.TCPAccept);
        alice.close();
        assert.deepEqual(await bob.next(3000), abort("alice", "bob", 1));
        assert.deepEqual(await carol.next(3000), abort("alice", "carol", 2));
        assert.deepEqual(await dave.next(3000), abort("dave", "alice", 3));
        const parked = await withDeadline(endB.readAll(), 5000, () => new Error("parked end open"));
        assert.deepEqual(
          parked,
          encode(abort("alice", "bob", 1)),
          "the parked end hears it, closes",
        );
        await freeAgain(h, "alice");
      }),
  );

  t(
    "leave: a connection closed right after its CR holds nothing afterwards",
    () =>
      withServer({}, async (h) => {
        const c = await h.connect();
        c.send({ op: Op.CR, pseudo: "alice" });
        await c.flush();
        c.close();
        await freeAgain(h, "alice");
      }),
  );

  t(
    "leave: everyone at once, with handshakes pending between all of them",
    () =>
      withServer({}, async (h) => {
        const names = ["alice", "bob", "carol"];
        const users = await Promise.all(names.map((n) => h.login(n)));
        users.forEach((from, i) => {
          for (const to of names) if (to !== names[i]) from.send(ask(names[i], to, 7));
        });
        // Each: an ERROR 1 per ask out, and the others' asks, in any order.
        for (const [i, u] of users.entries()) {
          const got = [await u.next(), await u.next(), await u.next(), await u.next()];
          const oks = got.filter((f) => f.op === Op.ERROR && f.code === ErrorCode.OK).length;
          const asks = got.filter((f) => f.op === Op.TCPAsk && f.recipient === names[i]).length;
          assert.deepEqual([oks, asks], [2, 2], `${names[i]}: ERROR 1 twice, asked twice`);
        }
        // The harness closes every connection at once: on a cluster it then checks Redis is empty.
      }),
  );
}
