import { MemoryPresence } from "../src/presence/memory.ts";
import { presenceContract } from "./contract/mod.ts";
import { TestNode } from "./helpers/presence_node.ts";

presenceContract({
  name: "memory",
  maxNodes: 1,
  nodes: () => Promise.resolve([new TestNode(() => new MemoryPresence())]),
});
