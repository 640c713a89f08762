-- Many private messages in one round trip: one PUBLISH per destination node.
-- (no KEYS: the user keys and leases it reads are derived from ARGV)
-- ARGV[1]: this node's id
-- ARGV[2..]: per message, its recipient pseudo then its envelope entry (envelope.ts)
-- Returns: per message, the receiver count of its node's PUBLISH
--          (0: user absent, on this node, or on a node whose lease is gone).
--#include keys
local own = ARGV[1]
local alive, parts, idx, order, res = {}, {}, {}, {}, {}
local n = (#ARGV - 1) / 2
for i = 1, n do
  res[i] = 0
  local node = redis.call('GET', user_key(ARGV[2 * i]))
  if node and node ~= own then
    if alive[node] == nil then
      alive[node] = redis.call('EXISTS', lease_key(node)) == 1
    end
    if alive[node] then
      if not parts[node] then
        parts[node], idx[node] = {{{BATCH_HEADER}}}, {}
        order[#order + 1] = node
      end
      local p = parts[node]
      p[#p + 1] = ARGV[1 + 2 * i]
      local x = idx[node]
      x[#x + 1] = i
    end
  end
end
for _, node in ipairs(order) do
  local count = redis.call('PUBLISH', node_channel(node), table.concat(parts[node]))
  for _, i in ipairs(idx[node]) do res[i] = count end
end
return res
