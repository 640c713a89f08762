-- name_held(prefix, key, pseudo): true while the name key is held by another
-- pseudo that is bound to a live node (a key left by a dead node is free).
local function name_held(prefix, key, pseudo)
  local holder = redis.call('GET', prefix .. 'name:' .. key)
  if not holder or holder == pseudo then return false end
  local node = redis.call('GET', prefix .. 'user:' .. holder)
  return node ~= false and redis.call('EXISTS', prefix .. 'node:{' .. node .. '}') == 1
end

-- take_names(prefix, pseudo, client, names): sets every name key to the pseudo
-- and writes its profile {client, k1, k2, ...}.
local function take_names(prefix, pseudo, client, names)
  local pk = prefix .. 'profile:' .. pseudo
  redis.call('DEL', pk)
  local prof = {'client', client}
  for i, k in ipairs(names) do
    redis.call('SET', prefix .. 'name:' .. k, pseudo)
    prof[#prof + 1] = 'k' .. i
    prof[#prof + 1] = k
  end
  redis.call('HSET', pk, unpack(prof))
end
