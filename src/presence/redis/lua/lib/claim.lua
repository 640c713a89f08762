--#include keys
-- name_held(key, pseudo): true while the name key is held by another
-- pseudo that is bound to a live node (a key left by a dead node is free).
local function name_held(key, pseudo)
  local holder = redis.call('GET', name_key(key))
  if not holder or holder == pseudo then return false end
  local node = redis.call('GET', user_key(holder))
  return node ~= false and redis.call('EXISTS', lease_key(node)) == 1
end

-- take_names(pseudo, client, names): sets every name key to the pseudo
-- and writes its profile {client, k1, k2, ...}.
local function take_names(pseudo, client, names)
  local pk = profile_key(pseudo)
  redis.call('DEL', pk)
  local prof = {'client', client}
  for i, k in ipairs(names) do
    redis.call('SET', name_key(k), pseudo)
    prof[#prof + 1] = 'k' .. i
    prof[#prof + 1] = k
  end
  redis.call('HSET', pk, unpack(prof))
end
