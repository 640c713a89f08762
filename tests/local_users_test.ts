/**
 * The node's registry of its users (src/server/local_users.ts): logins held here before the
 * directory answers, local delivery and fan-out, frames that overtake a login, eviction.
 */
import assert from "node:assert/strict";
import { Logger, silentLogger } from "../src/lib/log.ts";
import { MemoryDirectory, MemoryPresence } from "../src/presence/memory.ts";
import {
  bareClaim,
  type Claim,
  type Directory,
  PresenceUnavailable,
  type ReserveResult,
} from "../src/presence/presence.ts";
import { LocalUsers } from "../src/server/local_users.ts";
import { RecordingInbox } from "./helpers/presence_node.ts";
import { bytes } from "./helpers/presence_testkit.ts";

/** A directory whose answers the test hands out, one reserve at a time. */
class HeldDirectory implements Directory {
  reserves: Array<{ pseudo: string; answer: PromiseWithResolvers<ReserveResult> }> = [];
  released: string[] = [];
  reserve(pseudo: string, _claim: Claim): Promise<ReserveResult> {
    const answer = Promise.withResolvers<ReserveResult>();
    this.reserves.push({ pseudo, answer });
    return answer.promise;
  }
  release(pseudo: string): Promise<void> {
    this.released.push(pseudo);
    return Promise.resolve();
  }
  clientOf(): Promise<string | null> {
    return Promise.resolve(null);
  }
}

const claim = (keys: string[], client = "") => ({ keys, client });
/** A store of `directory` and one node's relay (nobody else to listen for). */
const storeOf = (directory: Directory) => ({ directory, relay: new MemoryPresence().relay });

Deno.test("local users: a login is counted once it succeeds, a logout at once", async () => {
  const users = new LocalUsers<RecordingInbox>(silentLogger);
  const dir = new MemoryDirectory();
  const a = new RecordingInbox(), b = new RecordingInbox();
  assert.equal(await users.login("a", bareClaim("a"), a, storeOf(dir)), "ok");
  assert.equal(users.size, 1);
  assert.equal(await users.login("a", bareClaim("a"), b, storeOf(dir)), "taken");
  assert.equal(users.size, 1, "a refused login adds nobody");
  assert.equal(await users.login("b", bareClaim("b"), b, storeOf(dir)), "ok");
  await users.logout("a", b, storeOf(dir)); // not the holder: no effect
  assert.equal(users.size, 2);
  assert.ok(users.has("a"));
  await users.logout("a", a, storeOf(dir));
  assert.equal(users.size, 1);
  assert.equal(await dir.clientOf("a"), null, "released in the directory too");
  assert.equal(await users.login("a", bareClaim("a"), b, storeOf(dir)), "ok");
});

Deno.test("local users: send reaches the holder only; fanOut everyone but one", async () => {
  const users = new LocalUsers<RecordingInbox>(silentLogger);
  const dir = new MemoryDirectory();
  const [a, b, c] = [new RecordingInbox(), new RecordingInbox(), new RecordingInbox()];
  await users.login("a", bareClaim("a"), a, storeOf(dir));
  await users.login("b", bareClaim("b"), b, storeOf(dir));
  await users.login("c", bareClaim("c"), c, storeOf(dir));
  assert.equal(users.send("b", bytes(2, 9)), true);
  assert.equal(users.send("ghost", bytes(2)), false);
  assert.deepEqual(b.frames, [bytes(2, 9)]);
  assert.equal(a.frames.length, 0);
  assert.equal(users.fanOut(bytes(3, 1), "a"), 2);
  assert.deepEqual([a.frames.length, b.frames.length, c.frames.length], [0, 2, 1]);
});

Deno.test("local users: a login in flight holds its pseudo and keys on this node", async () => {
  const users = new LocalUsers<RecordingInbox>(silentLogger);
  const dir = new HeldDirectory();
  const first = users.login(
    "bob",
    claim(["bob"], "198.51.100.1"),
    new RecordingInbox(),
    storeOf(dir),
  );
  assert.ok(users.holds("bob") && !users.has("bob"), "held, not logged in yet");
  // The same pseudo, or a lookalike sharing a key, never reaches the directory meanwhile.
  assert.equal(
    await users.login("bob", claim(["bob"]), new RecordingInbox(), storeOf(dir)),
    "taken",
  );
  assert.equal(
    await users.login("B0B", claim(["bob"]), new RecordingInbox(), storeOf(dir)),
    "taken",
  );
  assert.equal(dir.reserves.length, 1);
  assert.equal(users.clientOf("bob"), undefined, "not logged in: no client key yet");
  dir.reserves[0].answer.resolve("ok");
  assert.equal(await first, "ok");
  assert.equal(users.clientOf("bob"), "198.51.100.1");
});

Deno.test("local users: a refused or failed login holds nothing afterwards", async () => {
  const users = new LocalUsers<RecordingInbox>(silentLogger);
  const dir = new HeldDirectory();
  const taken = users.login("a", bareClaim("a"), new RecordingInbox(), storeOf(dir));
  dir.reserves[0].answer.resolve("taken");
  assert.equal(await taken, "taken");
  assert.ok(!users.holds("a"));
  const failed = users.login("a", bareClaim("a"), new RecordingInbox(), storeOf(dir));
  dir.reserves[1].answer.reject(new PresenceUnavailable("down"));
  await assert.rejects(failed, PresenceUnavailable);
  assert.ok(!users.holds("a"));
  assert.equal(users.receive("a", bytes(2)), false, "nobody takes a frame for it");
});

Deno.test("local users: frames that overtake a login's reply are delivered first", async () => {
  const users = new LocalUsers<RecordingInbox>(silentLogger);
  const dir = new HeldDirectory();
  const inbox = new RecordingInbox();
  const login = users.login("a", bareClaim("a"), inbox, storeOf(dir));
  assert.equal(users.receive("a", bytes(2, 1)), true, "held for the login in flight");
  assert.equal(users.send("a", bytes(2, 9)), false, "a local sender is not told it was delivered");
  assert.equal(users.receive("a", bytes(2, 2)), true);
  dir.reserves[0].answer.resolve("ok");
  await login;
  assert.equal(users.receive("a", bytes(2, 3)), true);
  assert.deepEqual(inbox.frames, [bytes(2, 1), bytes(2, 2), bytes(2, 3)]);
});

Deno.test("local users: early frames are bounded, and the overflow is logged once", async () => {
  const lines: string[] = [];
  const users = new LocalUsers<RecordingInbox>(new Logger("warn", {}, (l) => lines.push(l)));
  const dir = new HeldDirectory();
  const inbox = new RecordingInbox();
  const login = users.login("a", bareClaim("a"), inbox, storeOf(dir));
  const frame = new Uint8Array(64 * 1024);
  for (let i = 0; i < 40; i++) users.receive("a", frame);
  dir.reserves[0].answer.resolve("ok");
  await login;
  assert.equal(inbox.frames.length, 16, "1 MiB held at most");
  assert.equal(lines.filter((l) => l.includes("dropped past the bound")).length, 1);
});

Deno.test("local users: evict ends the session holding the pseudo, and only that", async () => {
  const users = new LocalUsers<RecordingInbox>(silentLogger);
  const dir = new MemoryDirectory();
  const a = new RecordingInbox(), b = new RecordingInbox();
  await users.login("a", bareClaim("a"), a, storeOf(dir));
  await users.login("b", bareClaim("b"), b, storeOf(dir));
  users.evict("a");
  users.evict("ghost");
  assert.equal(a.evictions.length, 1);
  assert.equal(b.evictions.length, 0);
});
