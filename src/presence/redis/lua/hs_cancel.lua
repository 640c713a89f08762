-- Drops a pending handshake.
-- KEYS[1]: handshake
-- KEYS[2]: pair index
-- ARGV[1]: password
-- Returns: 1 dropped; 0 none pending.
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return n
