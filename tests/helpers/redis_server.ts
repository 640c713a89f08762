/** A throwaway redis-server for tests (see src/ops/processes.ts). */
export {
  freePort,
  pingRedis,
  type RedisProcess as TestRedis,
  startRedis,
} from "../../src/ops/processes.ts";
export {
  redisCli,
  type RedisClusterSet,
  type SentinelSet,
  startRedisCluster,
  startSentinelSet,
} from "../../src/ops/redis_topologies.ts";
