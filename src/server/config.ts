/**
 * Server configuration: one table of options, each a command-line flag with an
 * environment twin and a default. `--help` is generated from the table, and
 * every value is validated before anything listens.
 */
import { parseArgs } from "node:util";
import type { OptionSpec, ServerConfig } from "./options/types.ts";
import { NODE_OPTIONS } from "./options/node.ts";
import { LIMIT_OPTIONS } from "./options/limits.ts";
import { PROXY_OPTIONS } from "./options/proxy.ts";
import { parseCidrList } from "./net/cidr.ts";
import { joinNegativeValues } from "../lib/args.ts";
import { errorMessage } from "../lib/errors.ts";
import { redisTarget } from "../presence/redis/target.ts";
import { MIN_SECRET_BYTES, secretProblem } from "./options/secret.ts";

export type { OptionSpec, ServerConfig } from "./options/types.ts";

/** Every option, in --help order. */
export const OPTIONS: readonly OptionSpec[] = [...NODE_OPTIONS, ...PROXY_OPTIONS, ...LIMIT_OPTIONS];

export class ConfigError extends Error {
  override name = "ConfigError";
}

function convert(spec: OptionSpec, raw: string, source: string): string | number | boolean {
  switch (spec.kind) {
    case "string":
      return raw;
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(v)) return true;
      if (["0", "false", "no", "off"].includes(v)) return false;
      throw new ConfigError(`${source}: "${raw}" is not true or false`);
    }
    case "cidrs": {
      const r = parseCidrList(raw);
      if (!r.ok) throw new ConfigError(`${source}: ${r.reason}`);
      return raw;
    }
    case "enum":
      if (!spec.choices!.includes(raw)) {
        throw new ConfigError(`${source}: "${raw}" is not one of ${spec.choices!.join(", ")}`);
      }
      return raw;
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) {
        throw new ConfigError(`${source}: "${raw}" is not a whole number`);
      }
      const n = Number(raw);
      if (spec.min !== undefined && n < spec.min) {
        throw new ConfigError(`${source}: ${n} is below ${spec.min}`);
      }
      if (spec.max !== undefined && n > spec.max) {
        throw new ConfigError(`${source}: ${n} is above ${spec.max}`);
      }
      return n;
    }
  }
}

export function defaultConfig(): ServerConfig {
  const out: Record<string, string | number | boolean> = {};
  for (const spec of OPTIONS) {
    out[spec.key] = convert(spec, spec.default, `default of --${spec.flag}`);
  }
  return out as unknown as ServerConfig;
}

/**
 * Flags win over environment variables, which win over defaults. Throws
 * ConfigError naming the offending flag or variable.
 */
export function parseConfig(
  args: string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): { help: true } | { help: false; config: ServerConfig } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const spec of OPTIONS) options[spec.flag] = { type: "string" };
  // A switch may stand alone (`--proxy-protocol`) or take a value (`--proxy-protocol=false`).
  const switches = new Set(OPTIONS.filter((o) => o.kind === "bool").map((o) => `--${o.flag}`));
  args = args.map((a) => (switches.has(a) ? `${a}=true` : a));
  args = joinNegativeValues(args);
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new ConfigError(errorMessage(e));
  }
  if (parsed.values.help) return { help: true };
  const out: Record<string, string | number | boolean> = {};
  for (const spec of OPTIONS) {
    const flag = parsed.values[spec.flag] as string | undefined;
    const fromEnv = env(spec.env);
    if (flag !== undefined) out[spec.key] = convert(spec, flag, `--${spec.flag}`);
    else if (fromEnv !== undefined && fromEnv !== "") {
      out[spec.key] = convert(spec, fromEnv, spec.env);
    } else out[spec.key] = convert(spec, spec.default, `default of --${spec.flag}`);
  }
  const config = out as unknown as ServerConfig;
  if (config.clusterSecretFile !== "") {
    if (config.clusterSecret !== "") {
      throw new ConfigError(
        "give the cluster secret once: --cluster-secret or --cluster-secret-file",
      );
    }
    try {
      config.clusterSecret = Deno.readTextFileSync(config.clusterSecretFile).trim();
    } catch (e) {
      throw new ConfigError(
        `--cluster-secret-file: cannot read ${config.clusterSecretFile}: ${(e as Error).message}`,
      );
    }
  }
  const secretWrong = config.presence === "redis" ? secretProblem(config.clusterSecret) : null;
  if (secretWrong) {
    const from = config.clusterSecretFile
      ? `the cluster secret in ${config.clusterSecretFile} (--cluster-secret-file)`
      : "the cluster secret (--cluster-secret or CHATOS_CLUSTER_SECRET)";
    throw new ConfigError(
      `${from} ${secretWrong}: --presence redis needs at least ${MIN_SECRET_BYTES} random ` +
        "bytes, the same on every node (e.g. openssl rand -hex 32)",
    );
  }
  if (config.presence === "redis") {
    const target = redisTarget(config);
    if (typeof target === "string") throw new ConfigError(target);
  }
  return { help: false, config };
}

export function helpText(): string {
  const lines = [
    "ChatOS server",
    "",
    "Usage: deno task serve [options]",
    "",
    "Every option also reads an environment variable; a flag wins over it.",
    "",
  ];
  for (const spec of OPTIONS) {
    const def = spec.default === "" ? "" : ` default ${spec.default}`;
    lines.push(`  --${spec.flag.padEnd(22)} ${spec.env.padEnd(28)}${def}`.trimEnd());
    lines.push(`      ${spec.help}`);
  }
  lines.push("  -h, --help             this text");
  return lines.join("\n");
}
