/** A private link, set up the way a client does it, for tests. */
import assert from "node:assert/strict";
import { type ChatClient, PrivateEnd } from "../../src/client/client.ts";
import { ErrorCode, Op } from "../../src/protocol/mod.ts";

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
  names = { a: "alice", b: "bob" },
): Promise<{ endA: PrivateEnd; endB: PrivateEnd }> {
  const key = { sender: names.a, recipient: names.b, password };
  alice.send({ op: Op.TCPAsk, ...key });
  assert.equal(await alice.nextError(), ErrorCode.OK);
  assert.deepEqual(await bob.next(), { op: Op.TCPAsk, ...key });
  const endB = await PrivateEnd.open({ port: h.port }, { op: Op.TCPAccept, ...key });
  assert.deepEqual(await alice.next(), { op: Op.TCPAccept, ...key }, "TCPAccept relayed to A");
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
