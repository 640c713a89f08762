-- Counts one failed link join of a pair within a sliding window.
-- KEYS[1]: strikes sorted set
-- ARGV[1]: window ms
-- ARGV[2]: unique member
-- Returns: the count within the window, this one included.
--#include now_ms
local now = tonumber(now_str)
local w = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], w)
return redis.call('ZCARD', KEYS[1])
