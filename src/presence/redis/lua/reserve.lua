-- Binds a pseudo and its name keys to this node, unless a live node holds the
-- pseudo or any of the keys: all or nothing.
-- KEYS[1]: user key (chatos:user:<pseudo>)
-- KEYS[2]: this node's users set
-- KEYS[3]: this node's lease
-- ARGV[1]: node id
-- ARGV[2]: pseudo
-- ARGV[3]: client key of the user's chat connection
-- ARGV[4..]: the name keys (one or two)
-- Returns: 1 reserved (or already ours); 0 a live node holds the pseudo or a key;
--          error NOLEASE when this node's own lease is gone.
--#include claim
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('NOLEASE node lease missing') end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and redis.call('EXISTS', lease_key(cur)) == 1 then return 0 end
local names = {}
for i = 4, #ARGV do
  if name_held(ARGV[i], ARGV[2]) then return 0 end
  names[#names + 1] = ARGV[i]
end
if cur and cur ~= ARGV[1] then redis.call('SREM', users_key(cur), ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
take_names(ARGV[2], ARGV[3], names)
return 1
