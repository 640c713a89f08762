/**
 * `deno task serve`: parse the configuration, start a node, stop it on
 * SIGINT/SIGTERM (signals.ts: one Ctrl-C may arrive twice, and is one stop).
 */
import { ConfigError, helpText, parseConfig } from "./config.ts";
import { Logger } from "../lib/log.ts";
import { errorMessage } from "../lib/errors.ts";
import { WarnThrottle } from "../lib/rate.ts";
import { startServer } from "./server.ts";
import { StopSignals } from "./signals.ts";

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(Deno.args);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`chatos: ${e.message}\n(see --help)`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    console.log(helpText());
    return 0;
  }
  const config = parsed.config;
  if (!config.nodeId) config.nodeId = crypto.randomUUID().slice(0, 8);
  const log = new Logger(config.logLevel, { node: config.nodeId });
  // A promise nobody handled is a bug to fix, never a reason to drop every user.
  const warn = new WarnThrottle(log, config.warnIntervalMs);
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    warn.warn("unhandled rejection", { error: errorMessage(e.reason) });
  });
  let server;
  try {
    server = await startServer(config, { logger: log });
  } catch (e) {
    log.error("could not start", { error: errorMessage(e) });
    return 1;
  }
  const stopped = Promise.withResolvers<number>();
  const signals = new StopSignals();
  let graceOver: ReturnType<typeof setTimeout> | undefined;
  const onSignal = (sig: Deno.Signal) => () => {
    const act = signals.receive();
    if (act === "exit") {
      log.warn("second signal: exiting at once", { signal: sig });
      Deno.exit(1);
    }
    if (act === "same") {
      log.info("signal again within the grace: the same stop, still draining", {
        signal: sig,
        graceMs: signals.graceMs,
      });
      return;
    }
    log.info("shutting down", { signal: sig, drainMs: config.drainTimeoutMs });
    graceOver = setTimeout(
      () => log.info("still draining; a second signal now exits at once", {}),
      signals.graceMs,
    );
    server.close(config.drainTimeoutMs).then(() => stopped.resolve(0), (e) => {
      log.error("shutdown failed", { error: errorMessage(e) });
      stopped.resolve(1);
    }).finally(() => clearTimeout(graceOver));
  };
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  return await stopped.promise;
}

Deno.exit(await main());
