/**
 * The same end-to-end cases as tests/server_e2e_test.ts, with every new
 * connection on the next of three nodes sharing a real Redis: SPM, SMA, the
 * handshake and private links (bridged node to node) behave as on one node.
 */
import { chatCases } from "./e2e/chat_cases.ts";
import { linkCases } from "./e2e/link_cases.ts";
import { leaveCases } from "./e2e/leave_cases.ts";
import { guessCases } from "./e2e/guess_cases.ts";
import { nameCases } from "./e2e/name_cases.ts";
import { stopAllClusters, withCluster } from "./helpers/cluster_harness.ts";

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `cluster: ${name}`, fn, sanitizeOps: false, sanitizeResources: false });

chatCases(t, withCluster);
linkCases(t, withCluster);
guessCases(t, withCluster);
nameCases(t, withCluster);
leaveCases(t, withCluster);

Deno.test({
  name: "cluster: stop the clusters",
  fn: stopAllClusters,
  sanitizeOps: false,
  sanitizeResources: false,
});
