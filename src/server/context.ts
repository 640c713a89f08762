import type { Presence } from "../presence/presence.ts";
import type { ServerConfig } from "./config.ts";
import type { Logger } from "../lib/log.ts";
import type { Metrics } from "./metrics.ts";
import type { Handshakes } from "./handshakes.ts";
import type { LinkBroker } from "./links.ts";
import type { OutboundQueue } from "./outbound.ts";
import type { ChatSession } from "./session.ts";

/** What every connection handler shares on one node. */
export interface ServerContext {
  config: ServerConfig;
  presence: Presence;
  log: Logger;
  metrics: Metrics;
  handshakes: Handshakes;
  links: LinkBroker;
  /** Sessions logged in on this node, by pseudo. */
  sessions: Map<string, ChatSession>;
  /** True once shutdown began: new logins are refused. */
  draining: boolean;
  /** Every chat connection's outbound queue (drain waits on them). */
  outbound: Set<OutboundQueue>;
}
