/** A throwaway redis-server for tests (see src/ops/processes.ts). */
export {
  freePort,
  pingRedis,
  type RedisProcess as TestRedis,
  startRedis,
} from "../../src/ops/processes.ts";
