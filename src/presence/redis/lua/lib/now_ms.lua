-- Snippet, spliced in by scripts.ts where a script says `--#include now_ms`.
-- Defines now_str: Redis TIME as integer milliseconds, kept as a string
-- (tostring of a big Lua number would print in exponent form).
local __t = redis.call('TIME')
local now_str = __t[1] .. string.format('%03d', math.floor(tonumber(__t[2]) / 1000))
