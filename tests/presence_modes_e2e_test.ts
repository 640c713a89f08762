/**
 * The chat, link and leave end-to-end cases of tests/cluster_e2e_test.ts (not its
 * guess and name cases), and the 30-client login
 * race, on three ChatOS nodes sharing Redis in the two other modes: a Redis
 * Cluster (3 primaries, 3 replicas) and a primary found through Sentinel (a
 * primary, a replica, 3 sentinels). Every new connection lands on the next node.
 */
import assert from "node:assert/strict";
import type { RedisMode } from "../src/ops/cluster.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import { chatCases } from "./e2e/chat_cases.ts";
import { linkCases } from "./e2e/link_cases.ts";
import { leaveCases } from "./e2e/leave_cases.ts";
import { stopAllClusters, withClusterOn } from "./helpers/cluster_harness.ts";

for (const mode of ["cluster", "sentinel"] satisfies RedisMode[]) {
  const t = (name: string, fn: () => Promise<void>) =>
    Deno.test({
      name: `redis ${mode} e2e: ${name}`,
      fn,
      sanitizeOps: false,
      sanitizeResources: false,
    });
  const withCluster = withClusterOn(mode);

  t(
    "30 clients racing for one pseudo over 3 nodes: exactly one OK, the rest ERROR 2",
    () =>
      withCluster({}, async (h) => {
        const clients = await Promise.all(Array.from({ length: 30 }, () => h.connect()));
        const codes = await Promise.all(clients.map((c) => c.login("contested")));
        assert.equal(codes.filter((x) => x === ErrorCode.OK).length, 1);
        assert.equal(codes.filter((x) => x === ErrorCode.PseudoUnavailable).length, 29);
      }),
  );

  chatCases(t, withCluster);
  linkCases(t, withCluster);
  leaveCases(t, withCluster);

  // After this mode's cases: one topology at a time on this 2-core machine.
  Deno.test({
    name: `redis ${mode} e2e: stop the clusters`,
    fn: stopAllClusters,
    sanitizeOps: false,
    sanitizeResources: false,
  });
}
