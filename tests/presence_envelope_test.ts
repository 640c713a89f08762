/** The pub/sub envelope (src/presence/redis/envelope.ts): round trips, and bad input as values. */
import assert from "node:assert/strict";
import {
  BATCH_MARK,
  decodeBroadcast,
  decodeNodeMessage,
  encodeBatch,
  encodeBroadcast,
  encodeEntry,
  encodePing,
  luaConstants,
} from "../src/presence/redis/envelope.ts";
import { scripts } from "../src/presence/redis/scripts.ts";

const bytes = (...xs: number[]) => Uint8Array.from(xs);
const utf8 = (s: string) => new TextEncoder().encode(s);

Deno.test("envelope: a batch round-trips, pseudos with separators and unicode included", () => {
  const sent = [
    { pseudo: "alice", frame: bytes(2, 1, 2, 3) },
    { pseudo: "é:ü\u0000", frame: bytes() },
    { pseudo: "", frame: bytes(9) },
    { pseudo: "b".repeat(300), frame: new Uint8Array(70_000).fill(7) },
  ];
  const msg = encodeBatch(sent.map((e) => encodeEntry(e.pseudo, e.frame)));
  assert.equal((msg[0] << 8) | msg[1], BATCH_MARK);
  const m = decodeNodeMessage(msg);
  assert.equal(m.kind, "batch");
  if (m.kind !== "batch") return;
  assert.deepEqual(m.entries, sent);
  assert.equal(Object.getPrototypeOf(m.entries[0].frame), Uint8Array.prototype, "plain bytes");
});

Deno.test("envelope: a ping round-trips", () => {
  const m = decodeNodeMessage(encodePing(1234.5));
  assert.deepEqual(m, { kind: "ping", sentAt: 1234.5 });
});

Deno.test("envelope: a broadcast on a node's channel (Redis Cluster) is told apart", () => {
  const msg = encodeBroadcast(utf8("n".repeat(64)), "x", bytes(3));
  const m = decodeNodeMessage(msg);
  assert.equal(m.kind, "broadcast");
  assert.deepEqual(m, decodeBroadcast(msg));
});

Deno.test("envelope: a broadcast round-trips", () => {
  const msg = encodeBroadcast(utf8("node-1"), "bö:b", bytes(3, 1, 2));
  assert.deepEqual(decodeBroadcast(msg), {
    kind: "broadcast",
    origin: "node-1",
    except: "bö:b",
    frame: bytes(3, 1, 2),
  });
  assert.deepEqual(decodeBroadcast(encodeBroadcast(utf8("n"), "", bytes())), {
    kind: "broadcast",
    origin: "n",
    except: "",
    frame: bytes(),
  });
});

Deno.test("envelope: malformed node messages are values, never exceptions", () => {
  const good = encodeBatch([encodeEntry("alice", bytes(2, 1)), encodeEntry("bob", bytes(2, 2))]);
  const cases: Array<[string, Uint8Array]> = [
    ["empty", bytes()],
    ["one byte", bytes(0xff)],
    ["neither batch, ping nor broadcast", bytes(0x12, 0x34, 0)],
    ["ping too short", bytes(0, 0, 1, 2)],
    ["ping too long", new Uint8Array(11)],
    ["empty batch", bytes(0xff, 0xff)],
    ["truncated entry header", bytes(0xff, 0xff, 0, 0, 0)],
    ["entry longer than the message", good.subarray(0, good.length - 1)],
    ["pseudo longer than its entry", bytes(0xff, 0xff, 0, 0, 0, 2, 0, 9, 65, 66)],
    ["pseudo not UTF-8", bytes(0xff, 0xff, 0, 0, 0, 3, 0, 1, 0xc3)],
  ];
  for (const [what, msg] of cases) {
    const m = decodeNodeMessage(msg);
    assert.equal(m.kind, "malformed", what);
  }
  // Every truncation of a good batch but the whole is refused.
  for (let n = 0; n < good.length; n++) {
    const m = decodeNodeMessage(good.subarray(0, n));
    if (m.kind === "batch") {
      // A cut exactly between entries is a valid shorter batch.
      assert.deepEqual(m.entries, [{ pseudo: "alice", frame: bytes(2, 1) }], `cut at ${n}`);
    } else assert.equal(m.kind, "malformed", `cut at ${n}`);
  }
});

Deno.test("envelope: malformed broadcasts are values, never exceptions", () => {
  const good = encodeBroadcast(utf8("node"), "alice", bytes(3, 1));
  for (let n = 0; n < 4 + 4 + 5; n++) {
    assert.equal(decodeBroadcast(good.subarray(0, n)).kind, "malformed", `cut at ${n}`);
  }
  assert.equal(decodeBroadcast(bytes(0, 1, 0xff, 0, 0)).kind, "malformed", "origin not UTF-8");
  assert.equal(decodeBroadcast(bytes(0xff, 0xff)).kind, "malformed");
});

Deno.test("envelope: the Lua batch header is the batch mark", () => {
  // The script splices this literal in; Lua's '\255' is the byte 255.
  assert.equal(luaConstants.BATCH_HEADER, `'\\${BATCH_MARK >> 8}\\${BATCH_MARK & 0xff}'`);
  assert.ok(scripts.sendBatch.lua.includes(luaConstants.BATCH_HEADER));
  assert.ok(!/\{\{\w+\}\}/.test(scripts.sendBatch.lua), "every constant was replaced");
});
