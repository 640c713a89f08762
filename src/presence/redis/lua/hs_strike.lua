-- One failed join against every pending handshake of the ordered pair (a, b);
-- those whose strikes reach the budget are dropped.
-- KEYS[1]: pair index
-- ARGV[1]: the pair's tag (schema.ts pairTag), from which its handshake keys are named
-- ARGV[2]: strike budget
-- Returns: the passwords of the handshakes dropped.
--#include keys
local out = {}
local budget = tonumber(ARGV[2])
for _, pw in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local hk = handshake_key(ARGV[1], pw)
  if redis.call('EXISTS', hk) == 0 then
    redis.call('SREM', KEYS[1], pw)
  elseif redis.call('HINCRBY', hk, 'strikes', 1) >= budget then
    redis.call('DEL', hk)
    redis.call('SREM', KEYS[1], pw)
    out[#out + 1] = pw
  end
end
return out
