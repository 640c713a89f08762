/** Every scenario, in the order a run goes through them. */
import type { Scenario } from "../scenario.ts";
import { smaClusterOn } from "./cluster_sma.ts";
import { spmClusterOn } from "./cluster_spm.ts";
import { connect } from "./connect.ts";
import { crossNodeOn } from "./cross_node.ts";
import { floodBig } from "./flood_big.ts";
import { floodSma } from "./flood_sma.ts";
import { link } from "./link.ts";
import { peersBigRoom, peersLogin, peersPm, peersRoom } from "./peers.ts";
import { slowReaders } from "./slow_readers.ts";
import { sma } from "./sma.ts";
import { redisStop } from "./redis_stop.ts";
import { spm } from "./spm.ts";
import { spmHalf } from "./spm_half.ts";

export const SCENARIOS: readonly Scenario[] = [
  connect,
  spm,
  spmHalf,
  sma,
  link,
  spmClusterOn("single"),
  smaClusterOn("single"),
  crossNodeOn("single"),
  // After the standalone ones: the shared cluster is switched to a Redis Cluster once.
  spmClusterOn("cluster"),
  smaClusterOn("cluster"),
  crossNodeOn("cluster"),
  floodSma,
  floodBig,
  slowReaders,
  redisStop,
  // Last: the IRC daemons beside ours (full runs and --only peers).
  peersPm,
  peersRoom,
  peersBigRoom,
  peersLogin,
];
