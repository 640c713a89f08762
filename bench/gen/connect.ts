/**
 * connect mode: log in `count` sessions, `concurrency` at a time, and keep them
 * idle; over IRC (registration to the end of the MOTD) for target "ircd".
 */
import net from "node:net";
import { errorMessage } from "../../src/lib/errors.ts";
import { frame, OP_CR, OP_ERROR } from "../wire.ts";
import type { GenConfig } from "./config.ts";
import { ircLoginFrom } from "./irc.ts";
import { cpuSeconds, type GenState } from "./state.ts";

/** The sessions held open; destroyed when the generator quits. */
export type Held = Array<{ destroy(): void }>;

/**
 * Thousands of connect() calls from 127.0.0.1 to one server port make the
 * kernel's ephemeral-port search the bottleneck (measured: 19k logins took
 * 3.4 s, 2.5 s of it the generator's system time). Spreading the source over
 * many loopback addresses (all of 127/8 is local) keeps that search short;
 * only node:net lets a client bind its local address, so logins use it.
 */
function loginFrom(
  st: GenState,
  held: Held,
  port: number,
  local: string,
  pseudo: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: local });
    held.push(s);
    s.setNoDelay(true);
    let got = 0;
    const answer = new Uint8Array(2);
    s.on("connect", () => s.write(frame(OP_CR, [pseudo])));
    s.on("data", (d: Uint8Array) => {
      if (got >= 2) return;
      answer.set(d.subarray(0, 2 - got), got);
      got += Math.min(d.length, 2 - got);
      if (got < 2) return;
      s.pause(); // idle from here on, like a quiet user
      if (answer[0] === OP_ERROR && answer[1] === 1) resolve();
      else reject(new Error(`login ${pseudo}: got ${answer[0]}/${answer[1]}, not ERROR 1`));
    });
    s.on("error", reject);
    s.on("close", () => {
      if (got < 2) reject(new Error(`login ${pseudo}: connection closed`));
      else if (!st.stopping) st.noteError(`session ${pseudo} closed by the server`);
    });
  });
}

/** An IRC login from `local`, held open like loginFrom's. */
function ircLogin(
  st: GenState,
  held: Held,
  port: number,
  local: string,
  nick: string,
): Promise<void> {
  const { socket, done } = ircLoginFrom(port, local, nick, (loggedIn) => {
    if (loggedIn && !st.stopping) st.noteError(`session ${nick} closed by the server`);
  });
  held.push(socket);
  return done;
}

/** Logs everyone in, then reports {"ev":"done",...} through `emit`. */
export async function runConnect(
  cfg: GenConfig,
  st: GenState,
  held: Held,
  emit: (obj: Record<string, unknown>) => void,
): Promise<void> {
  const count = cfg.count ?? 1000;
  const conc = cfg.concurrency ?? 64;
  const k = cfg.ports.length;
  const logIn = cfg.target === "ircd" ? ircLogin : loginFrom;
  let next = 0;
  let logins = 0;
  let failures = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const local = `127.${100 + (cfg.gen % 100)}.${i & 63}.${1 + ((i >> 6) % 250)}`;
      try {
        await logIn(st, held, cfg.ports[i % k], local, `g${cfg.gen}c${i}`);
        logins++;
      } catch (e) {
        failures++;
        st.noteError(errorMessage(e));
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  emit({
    ev: "done",
    logins,
    failures,
    elapsed_s: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    first_error: st.firstError || undefined,
  });
}
