/** The pub/sub envelope (src/presence/redis/envelope.ts): round trips, and bad input as values. */
import assert from "node:assert/strict";
import {
  ANSWER,
  decodeBroadcast,
  decodeNodeMessage,
  encodeAnswers,
  encodeBroadcast,
  encodeFrame,
  encodePing,
} from "../src/presence/redis/envelope.ts";

const bytes = (...xs: number[]) => Uint8Array.from(xs);
const utf8 = (s: string) => new TextEncoder().encode(s);

Deno.test("envelope: a frame round-trips, pseudos with separators and unicode included", () => {
  const cases = [
    { seq: 1, deadline: 1_733_000_000_123, pseudo: "alice", frame: bytes(2, 1, 2, 3) },
    { seq: 0xffff_ffff, deadline: 0.5, pseudo: "é:ü\u0000", frame: bytes() },
    { seq: 7, deadline: 1, pseudo: "", frame: bytes(9) },
    { seq: 8, deadline: 2, pseudo: "b".repeat(300), frame: new Uint8Array(70_000).fill(7) },
  ];
  for (const c of cases) {
    const m = decodeNodeMessage(encodeFrame(utf8("node-1"), c.seq, c.deadline, c.pseudo, c.frame));
    assert.deepEqual(m, { kind: "frame", origin: "node-1", ...c });
    if (m.kind !== "frame") return;
    assert.equal(Object.getPrototypeOf(m.frame), Uint8Array.prototype, "plain bytes");
  }
});

Deno.test("envelope: answers round-trip", () => {
  const seqs = [1, 2, 0xffff_fffe], statuses = [ANSWER.delivered, ANSWER.notHere, ANSWER.expired];
  assert.deepEqual(decodeNodeMessage(encodeAnswers(utf8("nö"), seqs, statuses)), {
    kind: "answers",
    origin: "nö",
    seqs,
    statuses,
  });
  assert.deepEqual(decodeNodeMessage(encodeAnswers(utf8("n"), [], [])), {
    kind: "answers",
    origin: "n",
    seqs: [],
    statuses: [],
  });
});

Deno.test("envelope: a ping round-trips; relay protocol 1's batches are recognised", () => {
  assert.deepEqual(decodeNodeMessage(encodePing(1234.5)), { kind: "ping", sentAt: 1234.5 });
  assert.deepEqual(decodeNodeMessage(bytes(0xff, 0xff, 0, 0, 0, 9)), { kind: "older-release" });
});

Deno.test("envelope: a broadcast on a node's channel (Redis Cluster) is told apart", () => {
  const msg = encodeBroadcast(utf8("n".repeat(64)), 5, "x", bytes(3));
  const m = decodeNodeMessage(msg);
  assert.equal(m.kind, "broadcast");
  assert.deepEqual(m, decodeBroadcast(msg));
});

Deno.test("envelope: a broadcast round-trips", () => {
  const msg = encodeBroadcast(utf8("node-1"), 1_733_000_000_000.25, "bö:b", bytes(3, 1, 2));
  assert.deepEqual(decodeBroadcast(msg), {
    kind: "broadcast",
    origin: "node-1",
    deadline: 1_733_000_000_000.25,
    except: "bö:b",
    frame: bytes(3, 1, 2),
  });
  assert.deepEqual(decodeBroadcast(encodeBroadcast(utf8("n"), 0, "", bytes())), {
    kind: "broadcast",
    origin: "n",
    deadline: 0,
    except: "",
    frame: bytes(),
  });
});

Deno.test("envelope: malformed node messages are values, never exceptions", () => {
  const good = encodeFrame(utf8("n1"), 1, 9, "alice", bytes(2, 1));
  const cases: Array<[string, Uint8Array]> = [
    ["empty", bytes()],
    ["one byte", bytes(0xff)],
    ["neither frame, answers, ping nor broadcast", bytes(0x12, 0x34, 0)],
    ["ping too short", bytes(0, 0, 1, 2)],
    ["ping too long", new Uint8Array(11)],
    ["frame with no origin length", bytes(0xff, 0xfe, 0)],
    ["origin longer than the message", bytes(0xff, 0xfe, 0, 9, 65)],
    ["answers of the wrong size", bytes(0xff, 0xfd, 0, 1, 65, 0, 0, 0, 1)],
    ["origin not UTF-8", bytes(0xff, 0xfe, 0, 1, 0xc3)],
  ];
  for (const [what, msg] of cases) assert.equal(decodeNodeMessage(msg).kind, "malformed", what);
  // Every cut of a good frame before its pseudo ends is refused; after, the frame is shorter.
  const pseudoEnd = 4 + 2 + 14 + 5;
  for (let n = 0; n < good.length; n++) {
    const m = decodeNodeMessage(good.subarray(0, n));
    if (n >= pseudoEnd) assert.equal(m.kind, "frame", `cut at ${n}`);
    else assert.equal(m.kind, "malformed", `cut at ${n}`);
  }
});

Deno.test("envelope: malformed broadcasts are values, never exceptions", () => {
  const good = encodeBroadcast(utf8("node"), 1, "alice", bytes(3, 1));
  for (let n = 0; n < 2 + 4 + 8 + 2 + 5; n++) {
    assert.equal(decodeBroadcast(good.subarray(0, n)).kind, "malformed", `cut at ${n}`);
  }
  const badOrigin = encodeBroadcast(bytes(0xc3), 1, "", bytes());
  assert.equal(decodeBroadcast(badOrigin).kind, "malformed", "origin not UTF-8");
  assert.equal(decodeBroadcast(bytes(0xff, 0xff)).kind, "malformed");
});
