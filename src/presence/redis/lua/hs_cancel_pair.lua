-- Drops every pending handshake of the ordered pair (a, b).
-- KEYS[1]: pair index
-- ARGV[1]: the pair's tag (schema.ts pairTag), from which its handshake keys are named
-- Returns: the passwords dropped.
--#include keys
local out = {}
for _, pw in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('DEL', handshake_key(ARGV[1], pw)) == 1 then out[#out + 1] = pw end
end
redis.call('DEL', KEYS[1])
return out
