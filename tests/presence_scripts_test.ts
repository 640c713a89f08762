/**
 * The Lua loader (src/presence/redis/scripts.ts): the key functions it generates from schema.ts
 * name keys exactly as schema.ts does (run in a real redis-server), and no script names a key
 * another way.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  compose,
  luaKeyBuilders,
  luaKeyFunction,
  luaKeyFunctions,
  scripts,
} from "../src/presence/redis/scripts.ts";
import { namedTests } from "./helpers/presence_testkit.ts";
import { startRedis, type TestRedis } from "./helpers/redis_server.ts";

/** Values that a careless generator would mangle: quotes, escapes, bytes beyond ASCII, braces. */
const VALUES = ["alice", "a'b\\c\"d", "é中😀", "{x}y}", "1:2|3", "", "\n\r\t\u0000", "..]]%s"];

/** Each function with "v" for every value: the names a swapped builder would get wrong. */
const EXAMPLES: Record<string, string> = {
  lease_key: "chatos:node:{v}",
  users_key: "chatos:node:{v}:users",
  user_key: "chatos:user:v",
  profile_key: "chatos:profile:v",
  name_key: "chatos:name:v",
  handshake_key: "chatos:hs:{v}v",
  node_channel: "chatos:to:{v}",
};

let server: TestRedis | null = null;
let raw: Redis | null = null;

/** Runs `body` (Lua, after `defs`) on the test's redis-server with these ARGV. */
async function evalLua(defs: string, body: string, argv: string[]): Promise<unknown> {
  server ??= await startRedis();
  raw ??= new Redis(server.url, { maxRetriesPerRequest: 1 });
  return await raw.eval(`${defs}\n${body}`, 0, ...argv);
}

const test = namedTests("lua scripts");

test("every generated key function names a key as schema.ts does", async () => {
  const defs = luaKeyFunctions();
  assert.deepEqual(Object.keys(luaKeyBuilders).sort(), Object.keys(EXAMPLES).sort());
  for (const [name, build] of Object.entries(luaKeyBuilders)) {
    assert.match(defs, new RegExp(`^local function ${name}\\(`, "m"), `${name} is generated`);
    const example = Array.from({ length: build.length }, () => "v");
    assert.equal(build(...example), EXAMPLES[name], `${name} builds ${EXAMPLES[name]}`);
    for (const v of VALUES) {
      const args = Array.from({ length: build.length }, (_, i) => i === 0 ? v : v + i);
      const params = args.map((_, i) => `ARGV[${i + 1}]`).join(", ");
      const got = await evalLua(defs, `return ${name}(${params})`, args);
      assert.equal(got, build(...args), `${name}(${JSON.stringify(args)})`);
    }
  }
});

test("fixed text with quotes, backslashes, newlines and non-ASCII survives as Lua", async () => {
  const build = (a: string, b: string) => `it's\\\n→{${a}}${b}'\u00071`; // a digit after an escape
  const defs = luaKeyFunction("odd", build);
  assert.doesNotMatch(defs, /\n.*\n/, "one line");
  for (const v of VALUES) {
    assert.equal(await evalLua(defs, "return odd(ARGV[1], ARGV[2])", [v, "7"]), build(v, "7"));
  }
});

Deno.test("lua scripts: a builder that does more than splice its values is refused", () => {
  const measuring = (a: string) => `x:${a.length}:${a}`;
  assert.throws(() => luaKeyFunction("m", measuring), /more than splice/);
  const ignoring = (a: string, _b: string) => `x:${a}`;
  assert.throws(() => luaKeyFunction("i", ignoring), /every value/);
  assert.throws(() => luaKeyFunction("c", () => "x"), /every value/);
});

Deno.test("lua scripts: includes are spliced once each, nested ones too", () => {
  const libs: Record<string, string> = {
    a: "--#include keys\nlocal a = 1",
    keys: "local k = 0",
    b: "--#include keys\n--#include a\nlocal b = 2",
  };
  const def = compose(
    "t",
    "-- KEYS[1]: x\n--#include a\n--#include b\nreturn KEYS[1]",
    (n) => libs[n],
  );
  assert.equal(def.numberOfKeys, 1);
  assert.equal(def.lua.match(/local k = 0/g)?.length, 1, def.lua);
  assert.equal(def.lua.match(/local a = 1/g)?.length, 1, def.lua);
  assert.ok(def.lua.indexOf("local k") < def.lua.indexOf("local a"), "a dependency comes first");
});

Deno.test("lua scripts: every key function a script calls is defined in it", () => {
  for (const [script, def] of Object.entries(scripts)) {
    for (const [, name] of def.lua.matchAll(/\b(\w+_key|node_channel)\(/g)) {
      assert.match(def.lua, new RegExp(`local function ${name}\\(`), `${script} calls ${name}`);
    }
  }
});

test("no script spells a key's shape itself, nor takes a key prefix", async () => {
  const dir = new URL("../src/presence/redis/lua/", import.meta.url);
  const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name);
  files.push(...[...Deno.readDirSync(new URL("lib/", dir))].map((e) => `lib/${e.name}`));
  assert.ok(files.length > 15, `read ${files.length} files`);
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, dir));
    const code = text.split("\n").filter((l) => !l.trimStart().startsWith("--")).join("\n");
    assert.doesNotMatch(code, /'[a-z]+:\{?'/, `${file} spells a key's shape`);
    assert.doesNotMatch(text, /prefix/i, `${file} takes a prefix`);
  }
});

// Runs last: the server must not outlive the run.
test("stop redis", async () => {
  raw?.disconnect();
  await server?.stop();
});
