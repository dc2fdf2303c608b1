-- save_period.lua records a host's derived state for one period and, if the
-- period is the newest with a derived state, the host's current state.
-- KEYS: period hash, host's period zset, host hash.
-- ARGV: start (unix s), start stamp, state, reasons json, ttl (ms), retention (s).
local start = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'reasons', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (start - tonumber(ARGV[6])))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local cur = redis.call('HMGET', KEYS[3], 'pstart', 'pstate', 'psince')
if (not cur[1]) or start >= tonumber(cur[1]) then
  local since = cur[3]
  if cur[2] ~= ARGV[3] or not since then since = ARGV[2] end
  redis.call('HSET', KEYS[3], 'pstart', ARGV[1], 'pstate', ARGV[3], 'psince', since)
end
return 1
