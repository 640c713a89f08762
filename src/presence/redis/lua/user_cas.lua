-- Redis Cluster: replaces or deletes a user key only if it still holds what the caller read.
-- KEYS[1]: user key
-- ARGV[1]: the value read ("" : the key was absent)
-- ARGV[2]: the new value ("" : delete)
-- Returns: 1 done; 0 the value had changed.
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
