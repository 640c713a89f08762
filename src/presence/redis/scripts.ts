/**
 * The Lua scripts behind RedisPresence, one file each under ./lua/. Each runs
 * atomically in Redis, which is what makes reservations and handshake
 * transitions safe across nodes.
 *
 * A script's header comment states its KEYS and ARGV; the number of `KEYS[n]`
 * lines there is the key count given to Redis, so header and call cannot
 * disagree. Two things are composed here rather than pasted into the files:
 * `--#include NAME` splices in ./lua/lib/NAME.lua (once per script, includes
 * nested), and `--#include keys` the Lua functions that build the keys a script
 * derives from values it read (generated from schema.ts, so a key's shape is
 * written only there). Nothing on the path of a message runs a script: frames
 * between nodes are plain publishes (relay.ts).
 *
 * Files are read when this module loads (`--allow-read`, which `deno task
 * serve` and the Dockerfile's command grant).
 */
import { channels, keys } from "./schema.ts";

export interface ScriptDef {
  numberOfKeys: number;
  lua: string;
}

const files = {
  heartbeat: "heartbeat",
  reserve: "reserve",
  reassert: "reassert",
  release: "release",
  close: "close",
  prune: "prune",
  hsOpen: "hs_open",
  hsCancel: "hs_cancel",
  hsAccept: "hs_accept",
  hsClaim: "hs_claim",
  hsCancelPair: "hs_cancel_pair",
  hsStrike: "hs_strike",
  // Redis Cluster: each touches one slot (see cluster_topology.ts).
  userClaim: "user_claim",
  userCas: "user_cas",
  userRelease: "user_release",
  leaseClose: "lease_close",
  prunePop: "prune_pop",
} as const;

export type ScriptName = keyof typeof files;

const LUA_DIR = new URL("./lua/", import.meta.url);

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, LUA_DIR));
}

/** The keys a script derives from a value it read (a user key's node, a set's members). */
export const luaKeyBuilders: Readonly<Record<string, (...values: string[]) => string>> = {
  lease_key: keys.lease,
  users_key: keys.nodeUsers,
  user_key: keys.user,
  profile_key: keys.profile,
  name_key: keys.name,
  handshake_key: keys.pairHandshake,
  node_channel: channels.to,
};

/** A Lua string literal of `text`'s UTF-8 bytes: printable ASCII as is, the rest as \ddd. */
function luaString(text: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(text)) {
    const plain = b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c;
    out += plain ? String.fromCharCode(b) : `\\${String(b).padStart(3, "0")}`;
  }
  return `'${out}'`;
}

/**
 * `local function NAME(v1, ...)` returning what `build` returns for the same values. `build` is
 * called with markers in place of its values: it must splice each into fixed text, which calling
 * it again with longer markers checks (a builder that measured a value would change its text).
 */
export function luaKeyFunction(name: string, build: (...values: string[]) => string): string {
  const params = Array.from({ length: build.length }, (_, i) => `v${i + 1}`);
  // Markers from Unicode's private use area, which no key's fixed text holds.
  const shape = (pad: string) => build(...params.map((_, i) => `\uE000${i}${pad}\uE001`));
  const parts = shape("").split(/\uE000(\d+)\uE001/);
  const used = new Set(parts.filter((_, i) => i % 2 === 1));
  if (params.length === 0 || used.size !== params.length) {
    throw new Error(`${name}: its builder must use every value it takes, and take one`);
  }
  if (shape("\uE002\uE002").replaceAll("\uE002", "") !== shape("")) {
    throw new Error(`${name}: its builder does more than splice its values into fixed text`);
  }
  const terms = parts.flatMap((part, i) =>
    i % 2 === 1 ? [params[Number(part)]] : part === "" ? [] : [luaString(part)]
  );
  return `local function ${name}(${params.join(", ")}) return ${terms.join(" .. ")} end`;
}

/** What `--#include keys` splices in: every key function. */
export function luaKeyFunctions(): string {
  return Object.entries(luaKeyBuilders).map(([name, build]) => luaKeyFunction(name, build))
    .join("\n");
}

/** Builds one script's text and key count from its file; throws on a broken file (a build error). */
export function compose(
  file: string,
  text: string,
  include: (name: string) => string,
): ScriptDef {
  const included = new Set<string>();
  const splice = (lua: string): string =>
    lua.replace(/^--#include (\w+)\s*$/gm, (_, name: string) => {
      if (included.has(name)) return "";
      included.add(name);
      return splice(include(name)).trimEnd();
    });
  const lua = splice(text);
  const header = text.match(/^(?:--.*\n)+/)?.[0] ?? "";
  const declared = [...header.matchAll(/^-- KEYS\[(\d+)\]/gm)].map((m) => Number(m[1]));
  declared.forEach((n, i) => {
    if (n !== i + 1) throw new Error(`${file}.lua: header lists KEYS[${n}] out of order`);
  });
  return { numberOfKeys: declared.length, lua };
}

function load(): Record<ScriptName, ScriptDef> {
  const generated = luaKeyFunctions();
  const include = (name: string) => name === "keys" ? generated : read(`lib/${name}.lua`);
  const out = {} as Record<ScriptName, ScriptDef>;
  for (const [name, file] of Object.entries(files) as [ScriptName, string][]) {
    out[name] = compose(file, read(`${file}.lua`), include);
  }
  return out;
}

export const scripts: Readonly<Record<ScriptName, ScriptDef>> = load();
