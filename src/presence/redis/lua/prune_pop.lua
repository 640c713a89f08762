-- Redis Cluster: takes a batch of a dead node's users set, if its lease is really gone.
-- KEYS[1]: its lease
-- KEYS[2]: its users set
-- ARGV[1]: batch size
-- Returns: the pseudos taken (their user keys are checked one by one), or nil if it is alive.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
return redis.call('SPOP', KEYS[2], tonumber(ARGV[1]))
