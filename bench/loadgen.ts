/**
 * The load generator: one process, spawned by bench/run.ts, that opens raw
 * TCP connections to a ChatOS server (or to a ceiling: the forwarder or the
 * broadcaster; or, in the peer modes and connect, to an IRC daemon) and drives
 * one mode (bench/gen/*.ts).
 *
 * Usage: deno run -A bench/loadgen.ts '<GenConfig as JSON>'
 *
 * Control is line-based. The generator sets up its connections, prints
 * {"ev":"ready"} on stdout, then obeys commands on stdin:
 *   go    start the load (connect: log everyone in, then print {"ev":"done",...})
 *   mark  reset the counters: the measured window starts
 *   stop  print {"ev":"result",...} for the window and stop sending
 *   quit  close everything and exit (so does end of stdin)
 * It also exits by itself after `lifetimeMs`, so it can never outlive a run.
 */
import { errorMessage } from "../src/lib/errors.ts";
import type { GenConfig } from "./gen/config.ts";
import { type Held, runConnect } from "./gen/connect.ts";
import { setupLink } from "./gen/link.ts";
import { setupPeer } from "./gen/peer.ts";
import { setupSma } from "./gen/sma.ts";
import { setupSpm } from "./gen/spm.ts";
import { GenState } from "./gen/state.ts";

export type { GenConfig, Target } from "./gen/config.ts";

const enc = new TextEncoder();

function emit(obj: Record<string, unknown>): void {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(obj) + "\n"));
}

function fail(e: unknown): never {
  emit({ ev: "error", message: errorMessage(e) });
  Deno.exit(1);
}

async function* stdinLines(): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let pending = "";
  for await (const chunk of Deno.stdin.readable) {
    pending += dec.decode(chunk, { stream: true });
    let i;
    while ((i = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, i);
      pending = pending.slice(i + 1);
    }
  }
}

async function main(cfg: GenConfig): Promise<void> {
  setTimeout(() => {
    emit({ ev: "error", message: "lifetime exceeded" });
    Deno.exit(3);
  }, cfg.lifetimeMs ?? 300_000);
  const st = new GenState();
  const held: Held = [];
  let start: () => void = () => {};
  try {
    if (cfg.mode === "spm") start = await setupSpm(cfg, st);
    else if (cfg.mode === "sma") start = await setupSma(cfg, st);
    else if (cfg.mode === "link") start = await setupLink(cfg, st);
    else if (cfg.mode.startsWith("peer-")) start = await setupPeer(cfg, st);
    else if (cfg.mode !== "connect") throw new Error(`unknown mode ${cfg.mode}`);
  } catch (e) {
    fail(e);
  }
  emit({ ev: "ready" });
  for await (const line of stdinLines()) {
    const cmd = line.trim();
    if (cmd === "go") {
      if (cfg.mode === "connect") runConnect(cfg, st, held, emit).catch(fail);
      else {
        st.mark();
        start();
      }
    } else if (cmd === "mark") st.mark();
    else if (cmd === "stop") {
      const r = st.result();
      st.stopping = true;
      emit(r);
    } else if (cmd === "quit") break;
  }
  st.stopping = true;
  for (const c of held) c.destroy();
  Deno.exit(0);
}

if (import.meta.main) await main(JSON.parse(Deno.args[0] ?? "{}"));
