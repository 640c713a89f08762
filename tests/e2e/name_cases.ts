/**
 * End-to-end cases of pseudonyms nobody can counterfeit (docs/PROTOCOL.md,
 * "Pseudonyms nobody can counterfeit"). Run on one node and on a 3-node
 * cluster, where the reservation of the canonical keys is in Redis.
 */
import assert from "node:assert/strict";
import { ErrorCode, Op } from "../../src/protocol/mod.ts";
import { eventually, type RunCase } from "../helpers/harness.ts";

export function nameCases(t: RunCase["t"], withServer: RunCase["withServer"]): void {
  t(
    "names: lookalikes of a held name get ERROR 2, invisible ones ERROR 3",
    () =>
      withServer({}, async (h) => {
        await h.login("alice");
        const tryName = async (name: string) => {
          const c = await h.connect();
          const code = await c.login(name);
          c.close();
          return code;
        };
        for (const name of ["Alice", "ALICE", "\u0430lice", "ａｌｉｃｅ", "a\u217Cice", "aIice"]) {
          assert.equal(await tryName(name), ErrorCode.PseudoUnavailable, JSON.stringify(name));
        }
        for (const name of ["alice\u3164", "\u3164", "alice.", "_alice", "a\u200Blice"]) {
          assert.equal(await tryName(name), ErrorCode.InvalidPseudonym, JSON.stringify(name));
        }
      }),
  );

  t(
    "names: Devanagari, Polish and Japanese names log in; others see them as typed (NFC)",
    () =>
      withServer({}, async (h) => {
        const watcher = await h.login("watcher");
        for (const name of ["नमस्ते", "Łukasz", "日本"]) {
          const c = await h.login(name);
          c.send({ op: Op.SMA, sender: name, message: "hi" });
          assert.equal(await c.nextError(), ErrorCode.OK);
          assert.deepEqual(await watcher.next(), { op: Op.SMA, sender: name, message: "hi" });
        }
        // Typed decomposed (NFD), held and shown composed (NFC).
        const jose = await h.connect();
        assert.equal(await jose.login("Jose\u0301"), ErrorCode.OK);
        jose.send({ op: Op.SMA, sender: "Jos\u00e9", message: "hola" });
        assert.equal(await jose.nextError(), ErrorCode.OK);
        assert.deepEqual(await watcher.next(), {
          op: Op.SMA,
          sender: "Jos\u00e9",
          message: "hola",
        });
      }),
  );

  t(
    "names: a released name frees all its keys; a lookalike may then take it",
    () =>
      withServer({}, async (h) => {
        const alice = await h.login("alice");
        const bob = await h.login("bob");
        alice.close();
        const next = await h.connect();
        await eventually(async () => (await next.login("ALICE")) === ErrorCode.OK, 5000, "ALICE");
        bob.send({ op: Op.SPM, sender: "bob", recipient: "ALICE", message: "hey" });
        assert.equal(await bob.nextError(), ErrorCode.OK);
        assert.deepEqual(await next.next(), {
          op: Op.SPM,
          sender: "bob",
          recipient: "ALICE",
          message: "hey",
        });
        // The old display name is no route to the new holder.
        bob.send({ op: Op.SPM, sender: "bob", recipient: "alice", message: "hey" });
        assert.equal(await bob.nextError(), ErrorCode.UnreachableUser);
      }),
  );
}
