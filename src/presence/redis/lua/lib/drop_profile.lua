--#include keys
-- drop_profile(pseudo): deletes the pseudo's profile hash and the name
-- keys that still name the pseudo (a key taken over since is left alone).
local function drop_profile(pseudo)
  local pk = profile_key(pseudo)
  local fields = redis.call('HGETALL', pk)
  for i = 1, #fields, 2 do
    if fields[i] ~= 'client' then
      local nk = name_key(fields[i + 1])
      if redis.call('GET', nk) == pseudo then redis.call('DEL', nk) end
    end
  end
  redis.call('DEL', pk)
end
