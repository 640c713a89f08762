/**
 * Server configuration: one table of options, each a command-line flag with an
 * environment twin and a default. `--help` is generated from the table, and
 * every value is validated before anything listens.
 */
import { parseArgs } from "node:util";
import { LOG_LEVELS, type LogLevel } from "../lib/log.ts";
import { errorMessage } from "../lib/errors.ts";
import { parseCidrList } from "./net/cidr.ts";
import { redisTarget } from "../presence/redis/target.ts";

export interface ServerConfig {
  host: string;
  port: number;
  maxConnections: number;
  loginTimeoutMs: number;
  maxQueuedBytes: number;
  maxStringBytes: number;
  handshakeTtlMs: number;
  maxPendingAsks: number;
  linkBufferBytes: number;
  guessLimitPair: number;
  guessLimitAddress: number;
  guessWindowMs: number;
  proxyProtocol: boolean;
  proxyTrusted: string;
  proxyHeaderTimeoutMs: number;
  presence: "memory" | "redis";
  redisUrl: string;
  redisSentinels: string;
  redisSentinelName: string;
  redisCluster: string;
  nodeId: string;
  bridgeHost: string;
  bridgePort: number;
  advertiseHost: string;
  clusterSecret: string;
  clusterSecretFile: string;
  adminHost: string;
  adminPort: number;
  logLevel: LogLevel;
  drainTimeoutMs: number;
}

type Kind = "string" | "int" | "enum" | "bool" | "cidrs";
interface OptionSpec {
  key: keyof ServerConfig;
  flag: string;
  env: string;
  kind: Kind;
  default: string;
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
}

export const OPTIONS: readonly OptionSpec[] = [
  {
    key: "host",
    flag: "host",
    env: "CHATOS_HOST",
    kind: "string",
    default: "0.0.0.0",
    help: "address to listen on for clients",
  },
  {
    key: "port",
    flag: "port",
    env: "CHATOS_PORT",
    kind: "int",
    default: "7777",
    min: 0,
    max: 65535,
    help: "TCP port for clients (0: any free port)",
  },
  {
    key: "maxConnections",
    flag: "max-connections",
    env: "CHATOS_MAX_CONNECTIONS",
    kind: "int",
    default: "19000",
    min: 1,
    help: "open client connections at most; more are closed at once",
  },
  {
    key: "loginTimeoutMs",
    flag: "login-timeout-ms",
    env: "CHATOS_LOGIN_TIMEOUT_MS",
    kind: "int",
    default: "30000",
    min: 1,
    help: "a connection that has not logged in (or joined a link) by then is closed",
  },
  {
    key: "maxQueuedBytes",
    flag: "max-queued-bytes",
    env: "CHATOS_MAX_QUEUED_BYTES",
    kind: "int",
    default: "1048576",
    min: 1024,
    help: "outbound bytes queued for one client before it is dropped as a slow reader",
  },
  {
    key: "maxStringBytes",
    flag: "max-string-bytes",
    env: "CHATOS_MAX_STRING_BYTES",
    kind: "int",
    default: "32767",
    min: 64,
    max: 32767,
    help: "longest STRING accepted, in bytes; longer is a malformed frame",
  },
  {
    key: "handshakeTtlMs",
    flag: "handshake-ttl-ms",
    env: "CHATOS_HANDSHAKE_TTL_MS",
    kind: "int",
    default: "60000",
    min: 100,
    help: "a private-connection handshake not completed by then is aborted",
  },
  {
    key: "maxPendingAsks",
    flag: "max-pending-asks",
    env: "CHATOS_MAX_PENDING_ASKS",
    kind: "int",
    default: "16",
    min: 1,
    help: "handshakes one user may have pending as initiator",
  },
  {
    key: "linkBufferBytes",
    flag: "link-buffer-bytes",
    env: "CHATOS_LINK_BUFFER_BYTES",
    kind: "int",
    default: "65536",
    min: 1024,
    help: "bytes held for a private end before its peer joins (then reading pauses)",
  },
  {
    key: "guessLimitPair",
    flag: "guess-limit-pair",
    env: "CHATOS_GUESS_LIMIT_PAIR",
    kind: "int",
    default: "3",
    min: 1,
    help: "failed TCPAccept/TCPConnect for one (A, B) pair before its handshakes are aborted",
  },
  {
    key: "guessLimitAddress",
    flag: "guess-limit-address",
    env: "CHATOS_GUESS_LIMIT_ADDRESS",
    kind: "int",
    default: "20",
    min: 1,
    help: "failed TCPAccept/TCPConnect from one address before it is refused for a window",
  },
  {
    key: "guessWindowMs",
    flag: "guess-window-ms",
    env: "CHATOS_GUESS_WINDOW_MS",
    kind: "int",
    default: "60000",
    min: 1,
    help: "window over which failed link attempts are counted",
  },
  {
    key: "proxyProtocol",
    flag: "proxy-protocol",
    env: "CHATOS_PROXY_PROTOCOL",
    kind: "bool",
    default: "false",
    help:
      "connections from --proxy-trusted peers start with a PROXY v1/v2 header (the real client)",
  },
  {
    key: "proxyTrusted",
    flag: "proxy-trusted",
    env: "CHATOS_PROXY_TRUSTED",
    kind: "cidrs",
    default: "127.0.0.0/8,::1/128",
    help: "CIDR list of the balancers whose connections must carry a PROXY header",
  },
  {
    key: "proxyHeaderTimeoutMs",
    flag: "proxy-header-timeout-ms",
    env: "CHATOS_PROXY_HEADER_TIMEOUT_MS",
    kind: "int",
    default: "5000",
    min: 1,
    help: "a trusted peer's connection without a complete PROXY header by then is closed",
  },
  {
    key: "presence",
    flag: "presence",
    env: "CHATOS_PRESENCE",
    kind: "enum",
    default: "memory",
    choices: ["memory", "redis"],
    help: "presence store: memory (one node) or redis (a cluster)",
  },
  {
    key: "redisUrl",
    flag: "redis-url",
    env: "REDIS_URL",
    kind: "string",
    default: "redis://127.0.0.1:6379",
    help: "Redis for --presence redis",
  },
  {
    key: "redisSentinels",
    flag: "redis-sentinels",
    env: "CHATOS_REDIS_SENTINELS",
    kind: "string",
    default: "",
    help: "host:port,... of Sentinels to find the primary through (instead of --redis-url)",
  },
  {
    key: "redisSentinelName",
    flag: "redis-sentinel-name",
    env: "CHATOS_REDIS_SENTINEL_NAME",
    kind: "string",
    default: "",
    help: "the primary's name at the Sentinels (with --redis-sentinels)",
  },
  {
    key: "redisCluster",
    flag: "redis-cluster",
    env: "CHATOS_REDIS_CLUSTER",
    kind: "string",
    default: "",
    help: "host:port,... seed nodes of a Redis Cluster (instead of --redis-url)",
  },
  {
    key: "nodeId",
    flag: "node-id",
    env: "CHATOS_NODE_ID",
    kind: "string",
    default: "",
    help: "this node's id in the cluster (default: random)",
  },
  {
    key: "bridgeHost",
    flag: "bridge-host",
    env: "CHATOS_BRIDGE_HOST",
    kind: "string",
    default: "0.0.0.0",
    help: "address for node-to-node link bridges (redis mode)",
  },
  {
    key: "bridgePort",
    flag: "bridge-port",
    env: "CHATOS_BRIDGE_PORT",
    kind: "int",
    default: "7778",
    min: 0,
    max: 65535,
    help: "port for node-to-node link bridges (redis mode; 0: any free port)",
  },
  {
    key: "advertiseHost",
    flag: "advertise-host",
    env: "CHATOS_ADVERTISE_HOST",
    kind: "string",
    default: "",
    help: "host other nodes use to reach this node's bridge (default: this hostname)",
  },
  {
    key: "clusterSecret",
    flag: "cluster-secret",
    env: "CHATOS_CLUSTER_SECRET",
    kind: "string",
    default: "",
    help: "shared secret authenticating node-to-node bridges (required in redis mode; " +
      "a flag is visible in ps: prefer the variable or --cluster-secret-file)",
  },
  {
    key: "clusterSecretFile",
    flag: "cluster-secret-file",
    env: "CHATOS_CLUSTER_SECRET_FILE",
    kind: "string",
    default: "",
    help: "read the cluster secret from this file instead (surrounding whitespace ignored)",
  },
  {
    key: "adminHost",
    flag: "admin-host",
    env: "CHATOS_ADMIN_HOST",
    kind: "string",
    default: "127.0.0.1",
    help: "address of the admin HTTP endpoint",
  },
  {
    key: "adminPort",
    flag: "admin-port",
    env: "CHATOS_ADMIN_PORT",
    kind: "int",
    default: "-1",
    min: -1,
    max: 65535,
    help: "admin HTTP port for /metrics, /healthz, /readyz (-1: off)",
  },
  {
    key: "logLevel",
    flag: "log-level",
    env: "CHATOS_LOG_LEVEL",
    kind: "enum",
    default: "info",
    choices: LOG_LEVELS,
    help: "error, warn, info or debug",
  },
  {
    key: "drainTimeoutMs",
    flag: "drain-timeout-ms",
    env: "CHATOS_DRAIN_TIMEOUT_MS",
    kind: "int",
    default: "10000",
    min: 0,
    help: "on SIGTERM, how long queued output may take to flush before exit",
  },
];

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
  if (config.presence === "redis" && config.clusterSecret.length < 16) {
    throw new ConfigError(
      "--cluster-secret (CHATOS_CLUSTER_SECRET) of at least 16 characters is required with --presence redis",
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
