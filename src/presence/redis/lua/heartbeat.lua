-- Writes or refreshes this node's lease. A lease created anew gets a new fence: a value no
-- earlier lease of this node id had, so a reservation naming an old fence is known dead.
-- KEYS[1]: lease (chatos:node:{<id>})
-- ARGV[1]: instance (random id of this process)
-- ARGV[2]: bridge address
-- ARGV[3]: client address
-- ARGV[4]: started (ms epoch)
-- ARGV[5]: user count
-- ARGV[6]: lease ms
-- ARGV[7]: the relay protocol this node speaks (envelope.ts): nodes of another one refuse it
-- Returns: {0} another instance holds this node id; {1, fence} refreshed; {2, fence} created.
--#include now_ms
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[1] then return {0} end
local fence = redis.call('HGET', KEYS[1], 'fence')
if not inst or not fence then fence = ARGV[1] .. ':' .. now_str end
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'fence', fence, 'bridge', ARGV[2],
  'client', ARGV[3], 'started', ARGV[4], 'heartbeat', now_str, 'users', ARGV[5],
  'proto', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if inst then return {1, fence} end
return {2, fence}
