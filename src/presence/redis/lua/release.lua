-- Drops reservations of this node, with their name keys and profiles.
-- KEYS[1]: this node's users set
-- ARGV[1]: node id
-- ARGV[2..]: pseudos
-- Returns: how many user keys still pointed to this node and were deleted.
--#include drop_profile
local n = 0
for i = 2, #ARGV do
  local p = ARGV[i]
  local uk = user_key(p)
  redis.call('SREM', KEYS[1], p)
  if redis.call('GET', uk) == ARGV[1] then
    redis.call('DEL', uk)
    drop_profile(p)
    n = n + 1
  end
end
return n
