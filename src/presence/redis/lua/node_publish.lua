-- Redis Cluster: one turn's frames for one node, in order, on that node's slot: its lease and
-- its sharded channel share the hash tag {<node id>}.
-- KEYS[1]: the node's lease
-- ARGV[1]: the node's channel (chatos:to:{<node id>})
-- ARGV[2..]: pairs: a fence and an envelope entry (a private message, valid only while the lease
--            has that fence), or "" and a whole broadcast message
-- Returns: per pair, the receiver count of the SPUBLISH that carried it (0: not sent).
local fence = redis.call('HGET', KEYS[1], 'fence')
local res, run, runIdx = {}, {}, {}
local function flush()
  if #run == 0 then return end
  local n = redis.call('SPUBLISH', ARGV[1], {{BATCH_HEADER}} .. table.concat(run))
  for _, i in ipairs(runIdx) do res[i] = n end
  run, runIdx = {}, {}
end
local pairs_n = (#ARGV - 1) / 2
for i = 1, pairs_n do
  res[i] = 0
  local tag, payload = ARGV[2 * i], ARGV[2 * i + 1]
  if fence then
    if tag == '' then
      flush()
      res[i] = redis.call('SPUBLISH', ARGV[1], payload)
    elseif tag == fence then
      run[#run + 1] = payload
      runIdx[#runIdx + 1] = i
    end
  end
end
flush()
return res
