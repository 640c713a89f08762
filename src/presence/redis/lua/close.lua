-- Clean shutdown: drops this node's reservations and lease.
-- KEYS[1]: lease
-- KEYS[2]: this node's users set
-- KEYS[3]: nodes set
-- ARGV[1]: instance
-- ARGV[2]: node id
-- Returns: how many reservations were dropped (-1: the lease belongs to another instance).
--#include drop_profile
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[1] then return -1 end
local n = 0
for _, p in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local uk = user_key(p)
  if redis.call('GET', uk) == ARGV[2] then
    redis.call('DEL', uk)
    drop_profile(p)
    n = n + 1
  end
end
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
return n
