/** A private link, set up the way a client does it, for tests. */
import assert from "node:assert/strict";
import { type ChatClient, PrivateEnd } from "../../src/client/client.ts";
import { ErrorCode, Op } from "../../src/protocol/mod.ts";

/** Who asks (a) and who is asked (b), by pseudo. */
export interface LinkNames {
  a: string;
  b: string;
}

const ALICE_BOB: LinkNames = { a: "alice", b: "bob" };

/** A asks B for a link; asserts A's ERROR 1 and the TCPAsk reaching B. The handshake is pending. */
export async function pendingAsk(
  alice: ChatClient,
  bob: ChatClient,
  password: number,
  names = ALICE_BOB,
): Promise<void> {
  const key = { sender: names.a, recipient: names.b, password };
  alice.send({ op: Op.TCPAsk, ...key });
  assert.equal(await alice.nextError(), ErrorCode.OK, `TCPAsk ${password}`);
  assert.deepEqual(await bob.next(), { op: Op.TCPAsk, ...key }, "TCPAsk relayed to B");
}

/**
 * The handshake up to A's TCPConnect: A asks, B accepts on a new connection and A hears the
 * TCPAccept, every step asserted. Returns B's private end, parked until A joins.
 */
export async function handshake(
  h: { readonly port: number },
  alice: ChatClient,
  bob: ChatClient,
  password: number,
  names = ALICE_BOB,
): Promise<PrivateEnd> {
  await pendingAsk(alice, bob, password, names);
  const key = { sender: names.a, recipient: names.b, password };
  const endB = await PrivateEnd.open({ port: h.port }, { op: Op.TCPAccept, ...key });
  assert.deepEqual(await alice.next(), { op: Op.TCPAccept, ...key }, "TCPAccept relayed to A");
  return endB;
}

/**
 * Runs the whole handshake (TCPAsk, TCPAccept on a new connection, TCPConnect
 * on another) asserting every step, and returns both linked private ends.
 * `h.port` is read for each new connection, so a cluster harness spreads them.
 */
export async function openLink(
  h: { readonly port: number },
  alice: ChatClient,
  bob: ChatClient,
  password = 4242,
  names = ALICE_BOB,
): Promise<{ endA: PrivateEnd; endB: PrivateEnd }> {
  const endB = await handshake(h, alice, bob, password, names);
  const key = { sender: names.a, recipient: names.b, password };
  const endA = await PrivateEnd.open({ port: h.port }, { op: Op.TCPConnect, ...key });
  assert.deepEqual(await endA.answer(), [{ op: Op.ERROR, code: ErrorCode.OK }]);
  assert.deepEqual(await endB.answer(), [{ op: Op.ERROR, code: ErrorCode.OK }]);
  return { endA, endB };
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}
