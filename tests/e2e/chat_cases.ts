/**
 * End-to-end cases over TCP: CR, SPM, SMA and the decisions of docs/PROTOCOL.md on chat frames.
 * Written once; run against one node (tests/server_e2e_test.ts) and a
 * 3-node cluster whose every new connection lands on the next node
 * (tests/cluster_e2e_test.ts).
 */
import assert from "node:assert/strict";
import { ErrorCode, Op } from "../../src/protocol/mod.ts";
import { eventually, type RunCase } from "../helpers/harness.ts";

export function chatCases(t: RunCase["t"], withServer: RunCase["withServer"]): void {
  t(
    "CR: OK, then Pseudo Unavailable for a taken pseudo, released on disconnect",
    () =>
      withServer({}, async (h) => {
        const alice = await h.connect();
        assert.equal(await alice.login("alice"), ErrorCode.OK);
        const other = await h.connect();
        assert.equal(await other.login("alice"), ErrorCode.PseudoUnavailable);
        // the refused connection may try another pseudo
        assert.equal(await other.login("alice2"), ErrorCode.OK);
        alice.close();
        const third = await h.connect();
        await eventually(
          async () => (await third.login("alice")) === ErrorCode.OK,
          3000,
          "release",
        );
      }),
  );

  t("CR: a second CR on a logged-in connection is ignored", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      a.send({ op: Op.CR, pseudo: "other" });
      await a.expectSilence(200);
      const b = await h.connect();
      assert.equal(await b.login("other"), ErrorCode.OK, "the ignored CR reserved nothing");
      a.send({ op: Op.SPM, sender: "alice", recipient: "other", message: "still alice" });
      assert.equal(await a.nextError(), ErrorCode.OK);
    }));

  t(
    "CR: invalid pseudonyms get ERROR 3 (empty, too long, spaces, control chars, @ and /)",
    () =>
      withServer({}, async (h) => {
        const c = await h.connect();
        for (const bad of ["", "x".repeat(33), "a b", "tab\t", "nl\n", "@bob", "a/b", "é\u0000"]) {
          assert.equal(await c.login(bad), ErrorCode.InvalidPseudonym, JSON.stringify(bad));
        }
        assert.equal(
          await c.login("Zoë_2.0-x"),
          ErrorCode.OK,
          "letters of any script, digits, _ . -",
        );
      }),
  );

  t(
    "chat frames before CR get ERROR 7 and the connection stays usable",
    () =>
      withServer({}, async (h) => {
        const c = await h.connect();
        c.send({ op: Op.SPM, sender: "a", recipient: "b", message: "hi" });
        assert.equal(await c.nextError(), ErrorCode.NotConnected);
        c.send({ op: Op.SMA, sender: "a", message: "hi" });
        assert.equal(await c.nextError(), ErrorCode.NotConnected);
        c.send({ op: Op.TCPAsk, sender: "a", recipient: "b", password: 1 });
        assert.equal(await c.nextError(), ErrorCode.NotConnected);
        assert.equal(await c.login("late"), ErrorCode.OK);
      }),
  );

  t("SPM: relayed unchanged to the recipient; sender gets OK", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      const b = await h.login("bob");
      a.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: "héllo 👋" });
      assert.equal(await a.nextError(), ErrorCode.OK);
      assert.deepEqual(await b.next(), {
        op: Op.SPM,
        sender: "alice",
        recipient: "bob",
        message: "héllo 👋",
      });
    }));

  t(
    "SPM: wrong sender → ERROR 3, unknown recipient → ERROR 4, nothing relayed",
    () =>
      withServer({}, async (h) => {
        const a = await h.login("alice");
        const b = await h.login("bob");
        a.send({ op: Op.SPM, sender: "bob", recipient: "bob", message: "spoof" });
        assert.equal(await a.nextError(), ErrorCode.InvalidPseudonym);
        a.send({ op: Op.SPM, sender: "alice", recipient: "nobody", message: "x" });
        assert.equal(await a.nextError(), ErrorCode.UnreachableUser);
        await b.expectSilence(150);
      }),
  );

  t("SPM: a recipient who left is unreachable", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      const b = await h.login("bob");
      b.close();
      await eventually(async () => {
        a.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: "?" });
        return (await a.nextError()) === ErrorCode.UnreachableUser;
      });
    }));

  t("SPM: long (32767-byte) and empty messages are relayed", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      const b = await h.login("bob");
      const long = "é".repeat(16383) + "x"; // 32767 bytes
      a.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: long });
      assert.equal(await a.nextError(), ErrorCode.OK);
      assert.equal(((await b.next()) as { message: string }).message, long);
      a.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: "" });
      assert.equal(await a.nextError(), ErrorCode.OK);
      assert.equal(((await b.next()) as { message: string }).message, "");
    }));

  t("SPM: many pipelined messages arrive in order", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      const b = await h.login("bob");
      for (let i = 0; i < 2000; i++) {
        a.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: `m${i}` });
      }
      for (let i = 0; i < 2000; i++) assert.equal(await a.nextError(), ErrorCode.OK);
      for (let i = 0; i < 2000; i++) {
        assert.equal(((await b.next()) as { message: string }).message, `m${i}`);
      }
    }));

  t(
    "replies keep request order when recipients are remote, local and absent",
    () =>
      withServer({}, async (h) => {
        // In a cluster the 4th connection lands on the 1st one's node: carol is
        // local to alice, bob is remote, "nobody" is nowhere.
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        await h.login("filler");
        const carol = await h.login("carol");
        const rounds = 200;
        for (let i = 0; i < rounds; i++) {
          alice.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: `b${i}` });
          alice.send({ op: Op.SPM, sender: "alice", recipient: "carol", message: `c${i}` });
          alice.send({ op: Op.SPM, sender: "alice", recipient: "nobody", message: `n${i}` });
        }
        const codes: number[] = [];
        for (let i = 0; i < rounds * 3; i++) codes.push(await alice.nextError());
        const expected = Array.from({ length: rounds }, () => [1, 1, 4]).flat();
        assert.deepEqual(codes, expected);
        for (let i = 0; i < rounds; i++) {
          assert.equal(((await bob.next()) as { message: string }).message, `b${i}`);
          assert.equal(((await carol.next()) as { message: string }).message, `c${i}`);
        }
      }),
  );

  t(
    "SMA: OK to the sender, relayed once to every other user, not the sender",
    () =>
      withServer({}, async (h) => {
        const a = await h.login("alice");
        const others = [await h.login("bob"), await h.login("carol"), await h.login("dave")];
        const loner = await h.connect(); // not logged in: receives nothing
        a.send({ op: Op.SMA, sender: "alice", message: "hello all" });
        assert.equal(await a.nextError(), ErrorCode.OK);
        for (const o of others) {
          assert.deepEqual(await o.next(), { op: Op.SMA, sender: "alice", message: "hello all" });
          await o.expectSilence(50);
        }
        await a.expectSilence(100);
        await loner.expectSilence(50);
      }),
  );

  t("SMA: wrong sender → ERROR 3 and nothing relayed", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      const b = await h.login("bob");
      a.send({ op: Op.SMA, sender: "bob", message: "spoof" });
      assert.equal(await a.nextError(), ErrorCode.InvalidPseudonym);
      await b.expectSilence(150);
    }));

  t("TCPAccept/TCPConnect on a chat connection get ERROR 6", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      a.send({ op: Op.TCPAccept, sender: "x", recipient: "alice", password: 1 });
      assert.equal(await a.nextError(), ErrorCode.TcpNotInProtocol);
      a.send({ op: Op.TCPConnect, sender: "alice", recipient: "x", password: 1 });
      assert.equal(await a.nextError(), ErrorCode.TcpNotInProtocol);
    }));

  t("ERROR frames from a client are ignored", () =>
    withServer({}, async (h) => {
      const a = await h.login("alice");
      a.send({ op: Op.ERROR, code: 1 });
      await a.expectSilence(150);
      a.send({ op: Op.SMA, sender: "alice", message: "x" });
      assert.equal(await a.nextError(), ErrorCode.OK);
    }));
}
