/** The options of the client listener behind a balancer (PROXY protocol). */
import type { OptionSpec } from "./types.ts";

export const PROXY_OPTIONS: readonly OptionSpec[] = [
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
];
