/**
 * The presence contract, written once per part and run against every store: the directory
 * (directory.ts), the handshake registry (handshakes.ts) and the relay (relay.ts), as
 * Phoenix.PubSub's adapter tests and centrifuge's Broker/PresenceManager tests are. `nodes(n)`
 * returns n nodes whose stores share one backend, as n server nodes would; a store that cannot
 * share (memory) supports only n = 1 and the multi-node cases are skipped for it.
 */
import type { TestNode } from "../helpers/presence_node.ts";
import { directoryContract } from "./directory.ts";
import { handshakeContract } from "./handshakes.ts";
import { relayContract } from "./relay.ts";

export interface ContractTarget {
  name: string;
  maxNodes: number;
  nodes(n: number): Promise<TestNode[]>;
  /** Stops the shared backend, if any (called once after the suite). */
  teardown?: () => Promise<void>;
}

/** Registers one contract case: `fn` gets `nodes` fresh nodes, closed after it. */
export type ContractTest = (
  title: string,
  nodes: number,
  fn: (nodes: TestNode[]) => Promise<void>,
) => void;

export function presenceContract(target: ContractTarget): void {
  const caseOf = (part: string): ContractTest => (title, n, fn) =>
    Deno.test({
      name: `presence contract [${target.name}] ${part}: ${title}`,
      ignore: n > target.maxNodes,
      sanitizeOps: false,
      sanitizeResources: false,
      async fn() {
        const nodes = await target.nodes(n);
        try {
          await fn(nodes);
        } finally {
          for (const s of nodes) await s.close();
        }
      },
    });
  directoryContract(caseOf("directory"));
  handshakeContract(caseOf("handshakes"));
  relayContract(caseOf("relay"));
  // Registered last, so it runs after the suite: stops the shared backend (see ContractTarget).
  Deno.test({
    name: `presence contract [${target.name}]: teardown`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await target.teardown?.();
    },
  });
}
