-- Binds a pseudo to this node, unless a live node holds it.
-- KEYS[1]: user key (chatos:user:<pseudo>)
-- KEYS[2]: this node's users set
-- KEYS[3]: this node's lease
-- ARGV[1]: node id
-- ARGV[2]: pseudo
-- ARGV[3]: key prefix ("chatos:")
-- Returns: 1 reserved (or already ours); 0 a live node holds it;
--          error NOLEASE when this node's own lease is gone.
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('NOLEASE node lease missing') end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  if redis.call('EXISTS', ARGV[3] .. 'node:{' .. cur .. '}') == 1 then return 0 end
  redis.call('SREM', ARGV[3] .. 'node:{' .. cur .. '}:users', ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
