/**
 * End-to-end cases of the guessing rule that denies nobody (docs/PROTOCOL.md,
 * "Link guessing that denies nobody"): private-end frames from an address
 * other than the named user's chat connection never touch the handshake.
 * The users connect from 127.0.0.1; strangers from other loopback addresses.
 * Run on one node and on a 3-node cluster.
 */
import assert from "node:assert/strict";
import { PrivateEnd } from "../../src/client/client.ts";
import { ErrorCode, type Frame, Op } from "../../src/protocol/mod.ts";
import { eventually, type RunCase } from "../helpers/harness.ts";
import { handshake, openLink, pendingAsk } from "../helpers/link.ts";
import { SourcedClient } from "../helpers/sourced_client.ts";

const pair = { sender: "alice", recipient: "bob" } as const;
const accept = (password: number) => ({ op: Op.TCPAccept, ...pair, password }) as const;
const connect = (password: number) => ({ op: Op.TCPConnect, ...pair, password }) as const;
const abort = (password: number): Frame => ({ op: Op.TCPAbort, ...pair, password });

/** A stranger's private end: sends `frame` and returns everything the server answered. */
async function strangerTry(port: number, from: string, frame: Frame): Promise<Frame[]> {
  const c = await SourcedClient.connect(port, from);
  try {
    c.send(frame);
    return await c.rest();
  } finally {
    c.close();
  }
}

const REFUSED_CONNECT = (password: number) => [
  { op: Op.ERROR, code: ErrorCode.TcpNotInProtocol },
  abort(password),
];

export function guessCases(t: RunCase["t"], withServer: RunCase["withServer"]): void {
  t(
    "guessing: a stranger's TCPConnect every 200 ms cannot stop 10 links in a row, nor join one",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        let current = -1;
        let stop = false;
        const answers: Array<{ password: number; got: Frame[] }> = [];
        // Never logged in, from another address; half its guesses are the right password.
        const stranger = (async () => {
          let i = 0;
          while (!stop) {
            const password = i++ % 2 === 0 && current >= 0
              ? current
              : Math.floor(Math.random() * 65536) - 32768;
            answers.push({
              password,
              got: await strangerTry(h.port, "127.0.0.9", connect(password)),
            });
            await new Promise((r) => setTimeout(r, 200));
          }
        })();
        try {
          for (let n = 0; n < 10; n++) {
            current = 1000 + n;
            const endB = await handshake(h, alice, bob, current);
            // While B's end waits for A, the stranger makes at least one whole try.
            const seen = answers.length;
            await eventually(() => answers.length >= seen + 2, 5000, "the stranger's next try");
            const endA = await PrivateEnd.open({ port: h.port }, connect(current));
            assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: ErrorCode.OK }]);
            assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: ErrorCode.OK }]);
            await endA.write(Uint8Array.of(n));
            const got = await endB.read();
            assert.deepEqual(got && [...got], [n], `link ${n} carries A's byte to B`);
            endA.close();
            endB.close();
          }
        } finally {
          stop = true;
          await stranger;
        }
        assert.ok(answers.length >= 20, `the stranger kept trying (${answers.length} tries)`);
        for (const a of answers) assert.deepEqual(a.got, REFUSED_CONNECT(a.password));
        assert.ok(
          answers.some((a) => a.password >= 1000 && a.password < 1010),
          "right passwords tried",
        );
        await alice.expectSilence(100);
      }),
  );

  t(
    "guessing: TCPConnects and TCPAccepts from 50 addresses never join a pending link nor strike it",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const password = 4711;
        await pendingAsk(alice, bob, password);
        // Before B accepts, strangers try to take B's place; after, A's. Right password included.
        for (let i = 1; i <= 25; i++) {
          const got = await strangerTry(
            h.port,
            `127.0.1.${i}`,
            accept(password - 2 + (i % 3)),
          );
          assert.deepEqual(got, [{ op: Op.ERROR, code: ErrorCode.TcpNotInProtocol }]);
        }
        const endB = await PrivateEnd.open({ port: h.port }, accept(password));
        assert.deepEqual(await alice.next(), accept(password), "B's accept still works");
        for (let i = 26; i <= 50; i++) {
          const guess = password - 2 + (i % 3);
          const got = await strangerTry(h.port, `127.0.1.${i}`, connect(guess));
          assert.deepEqual(got, REFUSED_CONNECT(guess));
        }
        // 50 guesses, some right: the handshake took no strike and B's end heard nothing.
        await alice.expectSilence(100);
        await bob.expectSilence(0);
        const endA = await PrivateEnd.open({ port: h.port }, connect(password));
        assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: ErrorCode.OK }]);
        assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: ErrorCode.OK }]);
      }),
  );

  t(
    "guessing: a stranger cannot use up a user's address budget; misses from the owner still strike",
    () =>
      withServer({ guessLimitAddress: 5 }, async (h) => {
        // Far past the stranger's own budget: it is refused outright from then on.
        for (let i = 0; i < 12; i++) {
          await strangerTry(h.port, "127.0.0.9", connect(i));
        }
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        const { endA, endB } = await openLink(h, alice, bob, 77);
        endA.close();
        endB.close();
        // A miss from the owners' own address is a strike; the third aborts the handshake.
        await pendingAsk(alice, bob, 78);
        for (const guess of [1, 2, 3]) {
          const m = await PrivateEnd.open({ port: h.port }, connect(guess));
          await m.answer();
          await m.readAll();
        }
        assert.deepEqual(await alice.next(), abort(78));
        assert.deepEqual(await bob.next(), abort(78));
      }),
  );
}
