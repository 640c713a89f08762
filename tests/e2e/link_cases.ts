/**
 * End-to-end cases over TCP: the private-connection handshake, the link, and hijack protection.
 * Written once; run against one node (tests/server_e2e_test.ts) and a
 * 3-node cluster whose every new connection lands on the next node
 * (tests/cluster_e2e_test.ts).
 */
import assert from "node:assert/strict";
import { PrivateEnd } from "../../src/client/client.ts";
import { withDeadline } from "../../src/lib/async.ts";
import { encode, ErrorCode, type Frame, Op } from "../../src/protocol/mod.ts";
import { eventually, type RunCase, sleep } from "../helpers/harness.ts";
import { handshake, openLink, pendingAsk, randomBytes } from "../helpers/link.ts";

const text = new TextEncoder();
const utf8 = new TextDecoder();

/** Rejects naming `what` if `p` has not settled within `ms`: a broken link must fail, not hang. */
const within = <T>(p: Promise<T>, what: string, ms = 10_000) =>
  withDeadline(p, ms, () => new Error(`${what}: nothing within ${ms} ms`));

const ask = (a: string, b: string, password: number) =>
  ({ op: Op.TCPAsk, sender: a, recipient: b, password }) as const;
const abort = (a: string, b: string, password: number): Frame => ({
  op: Op.TCPAbort,
  sender: a,
  recipient: b,
  password,
});
const accept = (a: string, b: string, password: number) =>
  ({ op: Op.TCPAccept, sender: a, recipient: b, password }) as const;
const connect = (a: string, b: string, password: number) =>
  ({ op: Op.TCPConnect, sender: a, recipient: b, password }) as const;

/** Exactly `n` bytes from `end`; rejects at EOF or after `ms`. */
function readExactly(end: PrivateEnd, n: number, ms = 30_000): Promise<Uint8Array> {
  const reading = (async () => {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const c = await end.read();
      if (c === null) throw new Error(`EOF after ${got} of ${n} bytes`);
      out.set(c.subarray(0, n - got), got);
      got += c.length;
    }
    return out;
  })();
  return within(reading, `${n} bytes`, ms);
}

/** Everything until the server closes `end`; rejects after 10 s. */
const readToEnd = (end: PrivateEnd, what = "the server closing the end") =>
  within(end.readAll(), what);

export function linkCases(t: RunCase["t"], withServer: RunCase["withServer"]): void {
  t(
    "link: full handshake, then 1 MiB each way at the same time, unchanged",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const { endA, endB } = await openLink(h, alice, bob);
        const fromA = randomBytes(1 << 20), fromB = randomBytes(1 << 20);
        const [gotAtB, gotAtA] = await Promise.all([
          readExactly(endB, fromA.length),
          readExactly(endA, fromB.length),
          endA.write(fromA),
          endB.write(fromB),
        ]);
        assert.ok(gotAtB.every((v, i) => v === fromA[i]), "A→B unchanged");
        assert.ok(gotAtA.every((v, i) => v === fromB[i]), "B→A unchanged");
        // closing one end closes the other
        endA.close();
        assert.equal(await within(endB.read(), "A's close at B"), null);
        assert.equal((await readToEnd(endB)).length, 0, "closed by the server");
        // the chat connections are untouched
        alice.send({ op: Op.SPM, sender: "alice", recipient: "bob", message: "after" });
        assert.equal(await alice.nextError(), ErrorCode.OK);
      }),
  );

  t(
    "link: bytes B sends right after TCPAccept wait for A and arrive after ERROR 1",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        await pendingAsk(alice, bob, 7);
        const endB = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 7));
        await endB.write(new TextEncoder().encode("early bytes"));
        await alice.next();
        // Held by the server or still in flight when A joins: either way after ERROR 1, whole.
        const endA = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 7));
        await endA.write(new TextEncoder().encode("ping"));
        assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: 1 }]);
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: 1 }]);
        assert.equal(new TextDecoder().decode(await readExactly(endA, 11)), "early bytes");
        assert.equal(new TextDecoder().decode(await readExactly(endB, 4)), "ping");
      }),
  );

  t(
    "link: before A joins, the server holds only a bounded buffer; all bytes still arrive",
    () =>
      withServer({ linkBufferBytes: 64 * 1024 }, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const endB = await handshake(h, alice, bob, 8);
        const big = randomBytes(16 << 20);
        let written = false;
        const writing = endB.write(big).then(() => (written = true));
        await sleep(300);
        assert.equal(written, false, "16 MiB cannot be absorbed before the peer joins");
        const endA = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 8));
        assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: 1 }]);
        const got = await readExactly(endA, big.length);
        await writing;
        assert.ok(got.every((v, i) => v === big[i]));
      }),
  );

  t(
    "link: a reader that stops reading slows the writer (backpressure, no buffering)",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const { endA, endB } = await openLink(h, alice, bob);
        const big = randomBytes(64 << 20);
        let done = false;
        const writing = endA.write(big).then(() => (done = true));
        await sleep(500);
        assert.equal(done, false, "64 MiB cannot all be written while B does not read");
        const got = await readExactly(endB, big.length);
        await writing;
        assert.ok(got.every((v, i) => v === big[i]));
      }),
  );

  t(
    "TCPAsk: wrong sender → ERROR 3, absent B → ERROR 4, same triple → ERROR 5; each with a TCPAbort",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        alice.send(ask("mallory", "bob", 1));
        assert.equal(await alice.nextError(), ErrorCode.InvalidPseudonym);
        assert.deepEqual(await alice.next(), abort("mallory", "bob", 1));
        alice.send(ask("alice", "nobody", 1));
        assert.equal(await alice.nextError(), ErrorCode.UnreachableUser);
        assert.deepEqual(await alice.next(), abort("alice", "nobody", 1));
        await pendingAsk(alice, bob, 1);
        alice.send(ask("alice", "bob", 1));
        assert.equal(await alice.nextError(), ErrorCode.TcpInProtocol);
        assert.deepEqual(await alice.next(), abort("alice", "bob", 1));
        await bob.expectSilence(100);
        // another password is another handshake
        alice.send(ask("alice", "bob", 2));
        assert.equal(await alice.nextError(), ErrorCode.OK);
      }),
  );

  t(
    "TCPAbort: B declines → both get the TCPAbort; again → ERROR 6; a stranger → ERROR 3",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const carol = await h.login("carol");
        await pendingAsk(alice, bob, 5);
        carol.send(abort("alice", "bob", 5));
        assert.equal(await carol.nextError(), ErrorCode.InvalidPseudonym);
        bob.send(abort("alice", "bob", 5));
        assert.deepEqual(await alice.next(), abort("alice", "bob", 5));
        assert.deepEqual(await bob.next(), abort("alice", "bob", 5));
        bob.send(abort("alice", "bob", 5));
        assert.equal(await bob.nextError(), ErrorCode.TcpNotInProtocol);
        // after the abort, TCPAccept finds nothing
        const endB = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 5));
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
        assert.equal((await readToEnd(endB)).length, 0, "closed by the server");
      }),
  );

  t("TCPAbort: A may withdraw its own request", () =>
    withServer({}, async (h) => {
      const alice = await h.login("alice");
      const bob = await h.login("bob");
      await pendingAsk(alice, bob, 6);
      alice.send(abort("alice", "bob", 6));
      assert.deepEqual(await alice.next(), abort("alice", "bob", 6));
      assert.deepEqual(await bob.next(), abort("alice", "bob", 6));
    }));

  t(
    "TCPAccept with nothing pending → ERROR 6 and closed; TCPConnect → ERROR 6, TCPAbort, closed",
    () =>
      withServer({}, async (h) => {
        const endB = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 9));
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
        assert.equal((await readToEnd(endB)).length, 0, "closed by the server");
        const endA = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 9));
        assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
        const rest = await readToEnd(endA);
        assert.deepEqual([...rest], [
          Op.TCPAbort,
          0,
          5,
          ...new TextEncoder().encode("alice"),
          0,
          3,
          ...new TextEncoder().encode("bob"),
          0,
          9,
        ]);
      }),
  );

  t(
    "TCPConnect before B accepted is refused and the handshake survives a single slip",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        await pendingAsk(alice, bob, 10);
        const early = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 10));
        assert.deepEqual(await early.answer(), [{
          op: Op.ERROR,
          code: ErrorCode.TcpNotInProtocol,
        }]);
        const endB = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 10));
        await alice.next();
        const endA = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 10));
        assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: 1 }]);
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: 1 }]);
      }),
  );

  t(
    "a pending handshake is aborted (TCPAbort to the other side) when A or B disconnects",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        await pendingAsk(alice, bob, 11);
        alice.close();
        assert.deepEqual(await bob.next(), abort("alice", "bob", 11));
        const alice2 = await h.connect();
        await eventually(async () => (await alice2.login("alice")) === 1);
        await pendingAsk(alice2, bob, 12);
        bob.close();
        assert.deepEqual(await alice2.next(), abort("alice", "bob", 12));
      }),
  );

  t(
    "a handshake nobody completes expires: TCPAbort to A, to B and to its parked end, which closes",
    () =>
      withServer({ handshakeTtlMs: 300 }, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        // On a cluster the next connection goes to the third node, so B's end lands on A's node,
        // whose expiry timer aborts the handshake.
        await h.connect();
        const endB = await handshake(h, alice, bob, 13);
        assert.deepEqual(await alice.next(3000), abort("alice", "bob", 13));
        assert.deepEqual(await bob.next(3000), abort("alice", "bob", 13));
        assert.deepEqual(
          await readToEnd(endB, "the parked end's TCPAbort and close"),
          encode(abort("alice", "bob", 13)),
          "the parked end hears the TCPAbort, then is closed",
        );
        const late = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 13));
        assert.deepEqual(await late.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
      }),
  );

  t(
    "B's private end closing before A joins aborts the handshake",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const endB = await handshake(h, alice, bob, 14);
        endB.close();
        assert.deepEqual(await alice.next(), abort("alice", "bob", 14));
        assert.deepEqual(await bob.next(), abort("alice", "bob", 14));
      }),
  );

  t(
    "hijack: wrong guesses abort the pair's handshakes; the guesser never joins the link",
    () =>
      withServer({ guessLimitPair: 3 }, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        await pendingAsk(alice, bob, 31337);
        for (const guess of [1, 2]) {
          const m = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", guess));
          assert.deepEqual(await m.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
          await readToEnd(m);
        }
        await alice.expectSilence(100);
        const third = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 3));
        assert.deepEqual(await third.answer(), [{
          op: Op.ERROR,
          code: ErrorCode.TcpNotInProtocol,
        }]);
        // the third failure aborts the real handshake: both users learn it
        assert.deepEqual(await alice.next(), abort("alice", "bob", 31337));
        assert.deepEqual(await bob.next(), abort("alice", "bob", 31337));
        // even the right password is now useless to a guesser
        const late = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 31337));
        assert.deepEqual(await late.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
        // and fresh users can still log in and chat
        const carol = await h.login("carol");
        carol.send({ op: Op.SMA, sender: "carol", message: "ok?" });
        assert.equal(await carol.nextError(), ErrorCode.OK);
      }),
  );

  t(
    "hijack: a second TCPAccept for an accepted handshake is refused; the first end keeps it",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const endB = await handshake(h, alice, bob, 15);
        const thief = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 15));
        assert.deepEqual(await thief.answer(), [{
          op: Op.ERROR,
          code: ErrorCode.TcpNotInProtocol,
        }]);
        const endA = await PrivateEnd.open({ port: h.port }, connect("alice", "bob", 15));
        assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: 1 }]);
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: 1 }]);
        await endA.write(Uint8Array.of(1, 2, 3));
        assert.deepEqual([...await readExactly(endB, 3)], [1, 2, 3]);
      }),
  );

  t(
    "hijack: an address with too many failures is refused even with a right guess",
    () =>
      withServer({ guessLimitAddress: 4, guessLimitPair: 100 }, async (h) => {
        // The address count is per node: 12 failures reach the limit on each of 3 nodes.
        for (let i = 0; i < 12; i++) {
          const m = await PrivateEnd.open({ port: h.port }, accept("x", "y", i));
          await m.answer();
        }
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        await pendingAsk(alice, bob, 16);
        const endB = await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 16));
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
      }),
  );

  t(
    "TCPAsk: at most 16 unanswered asks per user (the default); a declined or accepted one frees a slot",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        for (let p = 1; p <= 16; p++) alice.send(ask("alice", "bob", p));
        for (let p = 1; p <= 16; p++) {
          assert.equal(await alice.nextError(), ErrorCode.OK, `ask ${p}`);
        }
        for (let p = 1; p <= 16; p++) assert.deepEqual(await bob.next(), ask("alice", "bob", p));
        alice.send(ask("alice", "bob", 17));
        assert.equal(await alice.nextError(), ErrorCode.TcpInProtocol, "the 17th is refused");
        assert.deepEqual(await alice.next(), abort("alice", "bob", 17));
        // B declines one: it is no longer pending
        bob.send(abort("alice", "bob", 1));
        assert.deepEqual(await alice.next(), abort("alice", "bob", 1));
        assert.deepEqual(await bob.next(), abort("alice", "bob", 1));
        alice.send(ask("alice", "bob", 17));
        assert.equal(await alice.nextError(), ErrorCode.OK, "a declined ask frees a slot");
        assert.deepEqual(await bob.next(), ask("alice", "bob", 17));
        alice.send(ask("alice", "bob", 18));
        assert.equal(await alice.nextError(), ErrorCode.TcpInProtocol, "16 unanswered again");
        assert.deepEqual(await alice.next(), abort("alice", "bob", 18));
        // B accepts one: answered, so it no longer counts either
        await PrivateEnd.open({ port: h.port }, accept("alice", "bob", 2));
        assert.deepEqual(await alice.next(), accept("alice", "bob", 2));
        alice.send(ask("alice", "bob", 18));
        assert.equal(await alice.nextError(), ErrorCode.OK, "an accepted ask frees a slot");
      }),
  );

  t(
    "link: one end's EOF half-closes the other; the other way flows until it ends too",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const { endA, endB } = await openLink(h, alice, bob);
        await endA.write(text.encode("last words from A"));
        await endA.closeWrite();
        assert.equal(
          utf8.decode(await readToEnd(endB, "A's bytes, then EOF, at B")),
          "last words from A",
        );
        // B still may talk: the server closed only the direction A ended
        await endB.write(text.encode("B answers after A's EOF"));
        assert.equal(
          utf8.decode(await readExactly(endA, 23)),
          "B answers after A's EOF",
        );
        await endB.closeWrite();
        assert.equal(await within(endA.read(), "B's EOF at A"), null);
      }),
  );

  t(
    "link: a reset on one end closes the other at once",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const { endA, endB } = await openLink(h, alice, bob);
        // B writes until its end is closed; A reads a little and closes with the rest unread,
        // which resets its socket.
        const chunk = randomBytes(1 << 20);
        const flood = (async () => {
          while (true) await endB.write(chunk);
        })().catch(() => "B's end closed");
        assert.ok(((await within(endA.read(), "B's first bytes at A")) ?? []).length > 0);
        endA.close();
        assert.equal(await within(flood, "B's writes failing"), "B's end closed");
        assert.equal(await within(endB.read().catch(() => null), "B's read"), null);
        // the chat connections are untouched
        bob.send({ op: Op.SPM, sender: "bob", recipient: "alice", message: "after reset" });
        assert.equal(await bob.nextError(), ErrorCode.OK);
      }),
  );

  t(
    "link: outlives both chat connections",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const { endA, endB } = await openLink(h, alice, bob);
        alice.close();
        bob.close();
        // both logouts were handled: the pseudos are free again
        for (const name of ["alice", "bob"]) {
          const again = await h.connect();
          await eventually(async () => (await again.login(name)) === ErrorCode.OK, 5000, name);
        }
        await endA.write(text.encode("A still here"));
        assert.equal(utf8.decode(await readExactly(endB, 12)), "A still here");
        await endB.write(text.encode("B too"));
        assert.equal(utf8.decode(await readExactly(endA, 5)), "B too");
      }),
  );

  t(
    "A disconnecting with B's end parked: B hears the TCPAbort, and so does B's parked end, which closes",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        // On a cluster the next two connections go to the third and first nodes, so B's end
        // lands on B's node, which hears the TCPAbort.
        await h.connect();
        await h.connect();
        const endB = await handshake(h, alice, bob, 21);
        alice.close();
        assert.deepEqual(await bob.next(), abort("alice", "bob", 21));
        assert.deepEqual(
          await readToEnd(endB, "the parked end's TCPAbort and close"),
          encode(abort("alice", "bob", 21)),
        );
      }),
  );
}
