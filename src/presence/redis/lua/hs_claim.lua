-- Consumes an accepted handshake.
-- KEYS[1]: handshake
-- KEYS[2]: pair index
-- ARGV[1]: password
-- Returns: {node, token, bridge}, or nil when none is accepted.
local v = redis.call('HMGET', KEYS[1], 'state', 'node', 'token', 'bridge')
if v[1] ~= 'accepted' then return false end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return {v[2], v[3], v[4]}
