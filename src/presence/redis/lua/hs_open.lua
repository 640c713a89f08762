-- Registers a pending handshake.
-- KEYS[1]: handshake
-- KEYS[2]: pair index
-- ARGV[1]: a
-- ARGV[2]: b
-- ARGV[3]: password
-- ARGV[4]: ttl ms
-- ARGV[5]: asking node id
-- Returns: 1 opened; 0 already pending.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[1], 'b', ARGV[2], 'password', ARGV[3], 'state', 'asked',
  'asker', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1
