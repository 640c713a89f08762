/**
 * The processes a scenario starts: the server under test, the ceilings and
 * the load generators (all children that speak JSON lines), and a throwaway
 * Redis (src/ops/processes.ts). One Harness per run; no module state.
 */
import { OPTIONS } from "../src/server/config.ts";
import { nodeRunArgs } from "../src/ops/node_command.ts";
import { freePort, type RedisProcess, startRedis } from "../src/ops/processes.ts";
import type { GenConfig } from "./gen/config.ts";
import type { Profile } from "./profiles.ts";
import { Child, Children, ROOT } from "./procs.ts";
import type { Console } from "./console.ts";

export interface HarnessOptions {
  /** Runs <serverRoot>src/server/main.ts (a patched copy for A/B runs); the repository by default. */
  serverRoot: string;
  /** Runs the server(s) with --cpu-prof into this directory. */
  cpuProfDir?: string;
  /** `--v8-flags=` for the server(s) only (an A/B of V8 settings). */
  serverV8Flags?: string;
  /** The broadcaster's tick ("immediate" or "timeout"). */
  ceilingTick?: string;
}

/** A listening child. */
export interface Proc {
  child: Child;
  port: number;
}

/**
 * Every bench client comes from loopback, so the per-address limits are off;
 * and the honest scenarios measure throughput, which flood control exists to
 * cap, so it is off too. The hostile scenarios turn it back on (FLOOD_CONTROL).
 */
const SERVER_FLAGS = [
  // 19,000 sessions need more sockets than the default descriptor budget leaves (the fd
  // limit less 10%): the bench raises it to just under the limit of 20,000.
  ...["--log-level", "error", "--max-connections", "19500", "--max-fds", "19900"],
  ...["--max-conns-per-address", "0", "--max-sessions-per-address", "0"],
  ...["--conn-rate-per-address", "0", "--rate-frames", "0", "--rate-bytes", "0"],
];

/** The server's default flood control, for scenarios that measure it (later flags win). */
export const FLOOD_CONTROL = ["rate-frames", "rate-bytes"].flatMap((flag) => [
  `--${flag}`,
  OPTIONS.find((o) => o.flag === flag)!.default,
]);

export class Harness {
  readonly profile: Profile;
  readonly console: Console;
  readonly options: HarnessOptions;
  readonly children = new Children();
  #genSeq = 0;

  constructor(profile: Profile, console: Console, options: HarnessOptions) {
    this.profile = profile;
    this.console = console;
    this.options = options;
  }

  #denoArgs(script: string, extra: string[]): string[] {
    // Ceilings and generators run plain; only the server is profiled.
    if (!script.startsWith("src/")) return ["run", "-A", script, ...extra];
    const dir = this.options.cpuProfDir;
    const prof = dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
    // The server runs as `deno task serve` runs it; an A/B of V8 flags adds to its own.
    return [
      ...nodeRunArgs(script, { denoFlags: prof, v8Extra: this.options.serverV8Flags }),
      ...extra,
    ];
  }

  /** The ChatOS server on a free port, with the bench's flags and `extra` ones. */
  async startServer(name: string, extra: string[] = []): Promise<Proc> {
    const port = freePort();
    const child = this.children.spawn({
      name,
      cmd: Deno.execPath(),
      cwd: this.options.serverRoot,
      args: this.#denoArgs("src/server/main.ts", [
        ...["--host", "127.0.0.1", "--port", String(port)],
        ...SERVER_FLAGS,
        ...extra,
      ]),
    });
    await child.listening(port, 15_000);
    return { child, port };
  }

  async startCeiling(kind: "forwarder" | "broadcaster", extra: string[] = []): Promise<Proc> {
    const tick = kind === "broadcaster" && this.options.ceilingTick
      ? ["--tick", this.options.ceilingTick]
      : [];
    const child = this.children.spawn({
      name: `ceiling_${kind}`,
      cmd: Deno.execPath(),
      args: this.#denoArgs(`bench/ceiling_${kind}.ts`, ["--port", "0", ...tick, ...extra]),
      stdin: true,
    });
    const ev = await child.next("listening", 15_000);
    return { child, port: ev.port as number };
  }

  spawnGen(cfg: Omit<GenConfig, "gen">): Child {
    const gen = this.#genSeq++;
    return this.children.spawn({
      name: `loadgen#${gen}(${cfg.mode}→${cfg.target})`,
      cmd: Deno.execPath(),
      args: ["run", "-A", `${ROOT}bench/loadgen.ts`, JSON.stringify({ ...cfg, gen })],
      stdin: true,
    });
  }

  /** A throwaway redis-server on a free port; the caller stops it. Null if none is installed. */
  async startRedis(): Promise<RedisProcess | null> {
    try {
      await new Deno.Command("redis-server", { args: ["--version"], stdout: "null" }).output();
    } catch {
      return null;
    }
    return await startRedis();
  }
}
