-- save_incident.lua stores an incident if its stored version is the one the
-- caller changed (compare-and-set), indexes it, appends the snapshot to the
-- incidents stream, and trims the oldest resolved incidents beyond the cap.
-- KEYS: incident hash, fingerprint key, open set, all zset, stream.
-- ARGV: id, expected version, new version, json, fingerprint, open (1/0),
--       score (ms), stream maxlen, max incidents, incident key prefix,
--       fingerprint key prefix.
-- Returns {1, new version} or {0, stored version}.
local incK, fpK, openK, allK, streamK = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, expected, version, doc, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local cur = redis.call('HGET', incK, 'v') or '0'
if cur ~= expected then return {0, tonumber(cur)} end

redis.call('HSET', incK, 'v', version, 'json', doc, 'fp', fp)
if fp ~= '' then
  if expected == '0' then
    redis.call('SET', fpK, id) -- a new incident is the latest for its fingerprint
  else
    redis.call('SETNX', fpK, id)
  end
end
if ARGV[6] == '1' then
  redis.call('SADD', openK, id)
else
  redis.call('SREM', openK, id)
end
redis.call('ZADD', allK, ARGV[7], id)
redis.call('XADD', streamK, 'MAXLEN', '~', ARGV[8], '*', 'id', id, 'version', version, 'incident', doc)

local keep = tonumber(ARGV[9])
local over = redis.call('ZCARD', allK) - keep
if over > 0 then
  -- delete the oldest resolved incidents; open ones stay whatever their
  -- age and are stepped over (pos counts them). Bounded per call.
  local removed, pos, inspected = 0, 0, 0
  while removed < over and inspected < 1000 do
    local old = redis.call('ZRANGE', allK, pos, pos + 99)
    if #old == 0 then break end
    for _, oid in ipairs(old) do
      inspected = inspected + 1
      if redis.call('SISMEMBER', openK, oid) == 1 then
        pos = pos + 1
      else
        local ok = ARGV[10] .. oid
        local ofp = redis.call('HGET', ok, 'fp')
        if ofp and ofp ~= '' and redis.call('GET', ARGV[11] .. ofp) == oid then
          redis.call('DEL', ARGV[11] .. ofp)
        end
        redis.call('DEL', ok)
        redis.call('ZREM', allK, oid)
        removed = removed + 1
        if removed == over then break end
      end
    end
  end
end
return {1, tonumber(version)}
