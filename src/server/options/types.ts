/** The server's configuration and the shape of one option of it. */
import type { LogLevel } from "../../lib/log.ts";

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
  maxFds: number;
  maxConnsPerAddress: number;
  maxSessionsPerAddress: number;
  connRatePerAddress: number;
  connBurstPerAddress: number;
  rateFrames: number;
  rateFramesBurst: number;
  rateBytes: number;
  rateBytesBurst: number;
  maxQueuedBytesTotal: number;
  maxLinksPerUser: number;
  linkIdleMs: number;
  bridgeMaxGreetings: number;
  bridgeGreetingMs: number;
  warnIntervalMs: number;
}

/** "bool": a switch (`--flag` alone means true); "cidrs": a CIDR list, kept as written. */
export type Kind = "string" | "int" | "enum" | "bool" | "cidrs";
export interface OptionSpec {
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
