/**
 * The end-to-end cases of tests/cluster_e2e_test.ts on three ChatOS nodes
 * sharing a Redis Cluster (3 primaries, 3 replicas) instead of one Redis,
 * every new connection on the next node; and the 30-client login race.
 */
import assert from "node:assert/strict";
import { ErrorCode } from "../src/protocol/mod.ts";
import { chatCases } from "./e2e/chat_cases.ts";
import { linkCases } from "./e2e/link_cases.ts";
import { stopAllClusters, withClusterOn } from "./helpers/cluster_harness.ts";

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: `redis cluster e2e: ${name}`,
    fn,
    sanitizeOps: false,
    sanitizeResources: false,
  });

const withCluster = withClusterOn("cluster");

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

Deno.test({
  name: "redis cluster e2e: stop the clusters",
  fn: stopAllClusters,
  sanitizeOps: false,
  sanitizeResources: false,
});
