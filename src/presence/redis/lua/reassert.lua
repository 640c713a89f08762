-- Writes this node's reservations again after Redis came back (maybe empty).
-- KEYS[1]: this node's users set
-- KEYS[2]: this node's lease
-- ARGV[1]: node id
-- ARGV[2]: key prefix
-- ARGV[3..]: pseudos
-- Returns: the pseudos now held by another live node (left to it).
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('NOLEASE node lease missing') end
local lost = {}
for i = 3, #ARGV do
  local p = ARGV[i]
  local uk = ARGV[2] .. 'user:' .. p
  local cur = redis.call('GET', uk)
  if cur and cur ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. 'node:{' .. cur .. '}') == 1 then
    lost[#lost + 1] = p
  else
    if cur and cur ~= ARGV[1] then redis.call('SREM', ARGV[2] .. 'node:{' .. cur .. '}:users', p) end
    redis.call('SET', uk, ARGV[1])
    redis.call('SADD', KEYS[1], p)
  end
end
return lost
