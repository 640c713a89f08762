-- Writes or refreshes this node's lease.
-- KEYS[1]: lease (chatos:node:<id>)
-- KEYS[2]: nodes set
-- KEYS[3]: this node's users set (unused; keeps the node's keys declared)
-- ARGV[1]: instance (random id of this process)
-- ARGV[2]: node id
-- ARGV[3]: bridge address
-- ARGV[4]: client address
-- ARGV[5]: started (ms epoch)
-- ARGV[6]: user count
-- ARGV[7]: lease ms
-- Returns: 0 another instance holds this node id; 1 lease refreshed; 2 lease (re)created.
--#include now_ms
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'bridge', ARGV[3], 'client', ARGV[4],
  'started', ARGV[5], 'heartbeat', now_str, 'users', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[2])
if inst then return 1 end
return 2
