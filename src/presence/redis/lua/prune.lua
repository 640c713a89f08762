-- Housekeeping for a node whose lease expired: its user keys, users set and id.
-- KEYS[1]: its lease
-- KEYS[2]: its users set
-- KEYS[3]: nodes set
-- ARGV[1]: its node id
-- ARGV[2]: batch size
-- Returns: -1 alive; 1 more to do; 0 done.
--#include drop_profile
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local ps = redis.call('SPOP', KEYS[2], tonumber(ARGV[2]))
for _, p in ipairs(ps) do
  local uk = user_key(p)
  if redis.call('GET', uk) == ARGV[1] then
    redis.call('DEL', uk)
    drop_profile(p)
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
redis.call('SREM', KEYS[3], ARGV[1])
return 0
