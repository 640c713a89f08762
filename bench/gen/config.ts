/** What bench/run.ts tells one load generator process to do (passed as JSON on its command line). */

/** "ircd": an IRC daemon (the peer scenarios), driven over IRC. */
export type Target = "chatos" | "forwarder" | "broadcaster" | "ircd";

export interface GenConfig {
  mode: "connect" | "spm" | "sma" | "link" | "peer-pm" | "peer-room";
  target: Target;
  /** One port per server node; clients are spread over them. */
  ports: number[];
  /** Distinguishes this generator's pseudos and pairing keys from other generators'. */
  gen: number;
  lifetimeMs?: number;
  /** connect: sessions to open, and logins in flight at once. */
  count?: number;
  concurrency?: number;
  /** spm: sender/recipient pairs and un-acked messages per sender. */
  pairs?: number;
  window?: number;
  /** spm/sma: message text bytes (a timestamp plus filler). */
  msgSize?: number;
  /** spm: text sizes pair i uses msgSizes[i % length] (instead of msgSize). */
  msgSizes?: number[];
  /** spm: recipients log in on these ports (round robin) instead of the sender's next node. */
  recipientPorts?: number[];
  /** spm: every sender sends to this user (logged in elsewhere); the pairs have no recipients. */
  to?: string;
  /** spm: recipients log in and then never read (slow readers); a refused sender stops. */
  silentRecipients?: boolean;
  /** spm: total msgs/s this generator paces to; 0 = as fast as the window allows. */
  rate?: number;
  /** sma: receivers, senders, and SMAs not yet delivered everywhere (all senders together). */
  receivers?: number;
  senders?: number;
  inflight?: number;
  /** peer modes on an IRC daemon: every session OPERs and sets user mode +F (bench/gen/peer.ts). */
  oper?: boolean;
  /** link: bytes per write. */
  chunk?: number;
}
