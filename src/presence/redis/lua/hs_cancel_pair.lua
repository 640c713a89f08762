-- Drops every pending handshake of the ordered pair (a, b).
-- KEYS[1]: pair index
-- ARGV[1]: handshake key prefix of the pair
-- Returns: the passwords dropped.
local out = {}
for _, pw in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('DEL', ARGV[1] .. pw) == 1 then out[#out + 1] = pw end
end
redis.call('DEL', KEYS[1])
return out
