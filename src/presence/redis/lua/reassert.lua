-- Writes this node's reservations again after Redis came back (maybe empty).
-- KEYS[1]: this node's users set
-- KEYS[2]: this node's lease
-- ARGV[1]: node id
-- ARGV[2..]: groups of four: pseudo, client key, name key 1, name key 2 ("" if none)
-- Returns: the pseudos now held by another live node, or whose name another holds (left to it).
--#include claim
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('NOLEASE node lease missing') end
local lost = {}
for i = 2, #ARGV, 4 do
  local p = ARGV[i]
  local uk = user_key(p)
  local cur = redis.call('GET', uk)
  local names = {}
  for j = i + 2, i + 3 do
    if ARGV[j] ~= '' then names[#names + 1] = ARGV[j] end
  end
  local held = cur and cur ~= ARGV[1] and redis.call('EXISTS', lease_key(cur)) == 1
  for _, k in ipairs(names) do
    if not held and name_held(k, p) then held = true end
  end
  if held then
    lost[#lost + 1] = p
  else
    if cur and cur ~= ARGV[1] then redis.call('SREM', users_key(cur), p) end
    redis.call('SET', uk, ARGV[1])
    redis.call('SADD', KEYS[1], p)
    take_names(p, ARGV[i + 1], names)
  end
end
return lost
