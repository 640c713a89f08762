-- Redis Cluster: drops a reservation if it is still this node's (whatever its fence).
-- KEYS[1]: user key
-- ARGV[1]: this node's id
-- Returns: 1 deleted; 0 not this node's.
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return 0 end
redis.call('DEL', KEYS[1])
return 1
