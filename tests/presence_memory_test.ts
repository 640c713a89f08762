import { MemoryPresence } from "../src/presence/memory.ts";
import { presenceContract } from "./presence_contract.ts";

presenceContract({
  name: "memory",
  maxNodes: 1,
  makeCluster: () => Promise.resolve([new MemoryPresence()]),
});
