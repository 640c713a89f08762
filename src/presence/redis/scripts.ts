/**
 * The Lua scripts behind RedisPresence, one file each under ./lua/. Each runs
 * atomically in Redis, which is what makes reservations and handshake
 * transitions safe across nodes.
 *
 * A script's header comment states its KEYS and ARGV; the number of `KEYS[n]`
 * lines there is the key count given to Redis, so header and call cannot
 * disagree. Two things are composed here rather than pasted into the files:
 * `--#include NAME` splices in ./lua/lib/NAME.lua, and `{{NAME}}` is replaced
 * by a constant of the pub/sub envelope (envelope.ts).
 *
 * Files are read when this module loads (`--allow-read`, which `deno task
 * serve` and the Dockerfile's command grant).
 */
import { luaConstants } from "./envelope.ts";

export interface ScriptDef {
  numberOfKeys: number;
  lua: string;
}

const files = {
  heartbeat: "heartbeat",
  reserve: "reserve",
  reassert: "reassert",
  release: "release",
  sendBatch: "send_batch",
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
  nodePublish: "node_publish",
  leaseClose: "lease_close",
  prunePop: "prune_pop",
} as const;

export type ScriptName = keyof typeof files;

const LUA_DIR = new URL("./lua/", import.meta.url);

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, LUA_DIR));
}

/** Builds one script's text and key count from its file; throws on a broken file (a build error). */
export function compose(
  file: string,
  text: string,
  include: (name: string) => string,
  constants: Readonly<Record<string, string>>,
): ScriptDef {
  const lua = text
    .replace(/^--#include (\w+)\s*$/gm, (_, name: string) => include(name).trimEnd())
    .replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const v = constants[name];
      if (v === undefined) throw new Error(`${file}.lua: unknown constant {{${name}}}`);
      return v;
    });
  const header = text.match(/^(?:--.*\n)+/)?.[0] ?? "";
  const declared = [...header.matchAll(/^-- KEYS\[(\d+)\]/gm)].map((m) => Number(m[1]));
  declared.forEach((n, i) => {
    if (n !== i + 1) throw new Error(`${file}.lua: header lists KEYS[${n}] out of order`);
  });
  return { numberOfKeys: declared.length, lua };
}

function load(): Record<ScriptName, ScriptDef> {
  const include = (name: string) => read(`lib/${name}.lua`);
  const out = {} as Record<ScriptName, ScriptDef>;
  for (const [name, file] of Object.entries(files) as [ScriptName, string][]) {
    out[name] = compose(file, read(`${file}.lua`), include, luaConstants);
  }
  return out;
}

export const scripts: Readonly<Record<ScriptName, ScriptDef>> = load();
