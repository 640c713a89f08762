-- Redis Cluster: the first step of reserving a pseudo, on its user key's slot only.
-- A value is "<node id>|<fence>"; it is valid while that node's lease carries that fence.
-- KEYS[1]: user key
-- ARGV[1]: this node's id
-- ARGV[2]: the value to write, "<node id>|<this lease's fence>"
-- Returns: nil when written (the key was free or already this node's), else the current value
--          (the caller checks its lease, then takes it over with user_cas if it is dead).
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return cur end
redis.call('SET', KEYS[1], ARGV[2])
return false
