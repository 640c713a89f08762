-- Redis Cluster: clean shutdown of the lease and the users set (the user keys, in other slots,
-- are released one by one before).
-- KEYS[1]: lease
-- KEYS[2]: this node's users set
-- ARGV[1]: instance
-- Returns: 1 dropped; 0 the lease belongs to another instance.
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
