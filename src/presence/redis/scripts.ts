/**
 * The Lua scripts behind RedisPresence. Each runs atomically in Redis, which is
 * what makes reservations and handshake transitions safe across nodes.
 *
 * Some scripts touch keys derived from stored values (the lease of the node a
 * user points to), so they need a single Redis (or a replica set behind one
 * primary), not Redis Cluster. ARGV[prefix] is always "chatos:".
 */

export interface ScriptDef {
  numberOfKeys: number;
  lua: string;
}

// Redis TIME as integer milliseconds, kept as a string (tostring of a big Lua
// number would print in exponent form).
const NOW_MS = `
local __t = redis.call('TIME')
local now_str = __t[1] .. string.format('%03d', math.floor(tonumber(__t[2]) / 1000))
`;

export const scripts = {
  /**
   * KEYS: lease, nodes, own users set.
   * ARGV: instance, nodeId, bridge, client, started, users, leaseMs.
   * 0: another instance holds this node id; 1: lease refreshed; 2: lease (re)created.
   */
  heartbeat: {
    numberOfKeys: 3,
    lua: `${NOW_MS}
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'bridge', ARGV[3], 'client', ARGV[4],
  'started', ARGV[5], 'heartbeat', now_str, 'users', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[2])
if inst then return 1 end
return 2
`,
  },

  /**
   * KEYS: user key, own users set, own lease. ARGV: nodeId, pseudo, prefix.
   * 1: reserved (or already ours); 0: a live node holds it; error NOLEASE: our lease is gone.
   */
  reserve: {
    numberOfKeys: 3,
    lua: `
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('NOLEASE node lease missing') end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  if redis.call('EXISTS', ARGV[3] .. 'node:' .. cur) == 1 then return 0 end
  redis.call('SREM', ARGV[3] .. 'node:' .. cur .. ':users', ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
`,
  },

  /**
   * Re-asserts this node's reservations after Redis came back (maybe empty).
   * KEYS: own users set, own lease. ARGV: nodeId, prefix, pseudo...
   * Returns the pseudos now held by another live node (left alone).
   */
  reassert: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('NOLEASE node lease missing') end
local lost = {}
for i = 3, #ARGV do
  local p = ARGV[i]
  local uk = ARGV[2] .. 'user:' .. p
  local cur = redis.call('GET', uk)
  if cur and cur ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. 'node:' .. cur) == 1 then
    lost[#lost + 1] = p
  else
    if cur and cur ~= ARGV[1] then redis.call('SREM', ARGV[2] .. 'node:' .. cur .. ':users', p) end
    redis.call('SET', uk, ARGV[1])
    redis.call('SADD', KEYS[1], p)
  end
end
return lost
`,
  },

  /**
   * KEYS: own users set. ARGV: nodeId, prefix, pseudo...
   * Deletes each user key that still points to this node; returns how many.
   */
  release: {
    numberOfKeys: 1,
    lua: `
local n = 0
for i = 3, #ARGV do
  local p = ARGV[i]
  local uk = ARGV[2] .. 'user:' .. p
  redis.call('SREM', KEYS[1], p)
  if redis.call('GET', uk) == ARGV[1] then
    redis.call('DEL', uk)
    n = n + 1
  end
end
return n
`,
  },

  /**
   * Many private messages in one round trip. ARGV: prefix, own nodeId, then per message its
   * recipient pseudo and its entry ([u32 length][u16 pseudo length][pseudo][frame], built by the
   * caller). Entries for one node are joined into one PUBLISH to that node, as
   * [0xFF 0xFF][entry][entry]... Returns, per message, the receiver count of its node's PUBLISH
   * (0: user absent, on this node, or on a node whose lease is gone).
   */
  sendBatch: {
    numberOfKeys: 0,
    lua: `
local prefix, own = ARGV[1], ARGV[2]
local alive, parts, idx, order, res = {}, {}, {}, {}, {}
local n = (#ARGV - 2) / 2
for i = 1, n do
  res[i] = 0
  local node = redis.call('GET', prefix .. 'user:' .. ARGV[1 + 2 * i])
  if node and node ~= own then
    if alive[node] == nil then
      alive[node] = redis.call('EXISTS', prefix .. 'node:' .. node) == 1
    end
    if alive[node] then
      if not parts[node] then
        parts[node], idx[node] = {'\\255\\255'}, {}
        order[#order + 1] = node
      end
      local p = parts[node]
      p[#p + 1] = ARGV[2 + 2 * i]
      local x = idx[node]
      x[#x + 1] = i
    end
  end
end
for _, node in ipairs(order) do
  local count = redis.call('PUBLISH', prefix .. 'to:' .. node, table.concat(parts[node]))
  for _, i in ipairs(idx[node]) do res[i] = count end
end
return res
`,
  },

  /**
   * Clean shutdown. KEYS: lease, own users set, nodes. ARGV: instance, nodeId, prefix.
   * Returns how many reservations were dropped (-1: the lease belongs to another instance).
   */
  close: {
    numberOfKeys: 3,
    lua: `
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[1] then return -1 end
local n = 0
for _, p in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local uk = ARGV[3] .. 'user:' .. p
  if redis.call('GET', uk) == ARGV[2] then
    redis.call('DEL', uk)
    n = n + 1
  end
end
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
return n
`,
  },

  /**
   * Housekeeping for a node whose lease expired. KEYS: its lease, its users set, nodes.
   * ARGV: its nodeId, prefix, batch size. -1: alive; 1: more to do; 0: done.
   */
  prune: {
    numberOfKeys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local ps = redis.call('SPOP', KEYS[2], tonumber(ARGV[3]))
for _, p in ipairs(ps) do
  local uk = ARGV[2] .. 'user:' .. p
  if redis.call('GET', uk) == ARGV[1] then redis.call('DEL', uk) end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
redis.call('SREM', KEYS[3], ARGV[1])
return 0
`,
  },

  /** KEYS: handshake, pair index. ARGV: a, b, password, ttlMs, nodeId. 1: opened; 0: pending. */
  hsOpen: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[1], 'b', ARGV[2], 'password', ARGV[3], 'state', 'asked',
  'asker', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1
`,
  },

  /** KEYS: handshake, pair index. ARGV: password. 1: dropped; 0: none pending. */
  hsCancel: {
    numberOfKeys: 2,
    lua: `
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return n
`,
  },

  /** KEYS: handshake. ARGV: node, token, bridge. 1: accepted; 0: not pending or accepted already. */
  hsAccept: {
    numberOfKeys: 1,
    lua: `
if redis.call('HGET', KEYS[1], 'state') ~= 'asked' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'accepted', 'node', ARGV[1], 'token', ARGV[2], 'bridge', ARGV[3])
return 1
`,
  },

  /** KEYS: handshake, pair index. ARGV: password. {node, token, bridge} or nil. Consumes. */
  hsClaim: {
    numberOfKeys: 2,
    lua: `
local v = redis.call('HMGET', KEYS[1], 'state', 'node', 'token', 'bridge')
if v[1] ~= 'accepted' then return false end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return {v[2], v[3], v[4]}
`,
  },

  /** KEYS: pair index. ARGV: handshake key prefix of the pair. Returns the dropped passwords. */
  hsCancelPair: {
    numberOfKeys: 1,
    lua: `
local out = {}
for _, pw in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('DEL', ARGV[1] .. pw) == 1 then out[#out + 1] = pw end
end
redis.call('DEL', KEYS[1])
return out
`,
  },

  /** KEYS: strikes zset. ARGV: windowMs, unique member. Returns the count within the window. */
  strike: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], w)
return redis.call('ZCARD', KEYS[1])
`,
  },
} satisfies Record<string, ScriptDef>;

export type ScriptName = keyof typeof scripts;
