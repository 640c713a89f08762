-- Records B's parked private end.
-- KEYS[1]: handshake
-- ARGV[1]: node
-- ARGV[2]: token
-- ARGV[3]: bridge
-- Returns: 1 accepted; 0 not pending, or accepted already.
if redis.call('HGET', KEYS[1], 'state') ~= 'asked' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'accepted', 'node', ARGV[1], 'token', ARGV[2], 'bridge', ARGV[3])
return 1
