-- apply.lua writes one batch of observations into the current state,
-- atomically. Key names come from keys.go as prefixes in ARGV[1..12], so this
-- script builds no names of its own; every key shares the caller's hash tag.
--
-- Timestamps are fixed-width UTC strings: comparing them as strings compares
-- the times. Records older (time_generated) than what is stored do not change
-- current state; a record equal to the stored one changes nothing, so
-- applying a batch twice is harmless.
--
-- ARGV[13] stored stamp, ARGV[14] period TTL (ms), ARGV[15] retention (s),
-- then records: kind id host site state event source gen recv, followed by
--   vm:      attrs-json
--   host:    period-key period-start(unix s) nfacts {name value-json}*nfacts
--   service: service-key (host/name)
-- Returns {applied, stale}.
local vmP, vmsK, hostP, hostsK = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local factsP, hostvmsP, hostsvcsP, periodsP = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local svcP, sitesK, sitevmsP, sitehostsP = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local stored, ttl, keep = ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15])

local applied, stale = 0, 0

-- index moves id from the set oldP..old to newP..new when they differ.
local function move(oldP, old, new, id)
  if old == new then return end
  if old ~= '' then redis.call('SREM', oldP .. old, id) end
  if new ~= '' then redis.call('SADD', oldP .. new, id) end
end

-- merge writes the facts whose stored time is not newer than gen.
local function merge(key, gen, names, values)
  local tf = {}
  for j = 1, #names do tf[j] = 't:' .. names[j] end
  local ts = redis.call('HMGET', key, unpack(tf))
  local upd = {}
  for j = 1, #names do
    if (not ts[j]) or ts[j] <= gen then
      upd[#upd + 1] = 'v:' .. names[j]
      upd[#upd + 1] = values[j]
      upd[#upd + 1] = tf[j]
      upd[#upd + 1] = gen
    end
  end
  if #upd > 0 then redis.call('HSET', key, unpack(upd)) end
end

local i = 16
local n = #ARGV
while i <= n do
  local kind, id, host, site = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local state, event, source, gen, recv = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  i = i + 9

  if kind == 'vm' then
    local attrs = ARGV[i]
    i = i + 1
    local key = vmP .. id
    local cur = redis.call('HMGET', key, 'gen', 'state', 'host', 'site', 'since', 'event', 'source', 'attrs')
    local cgen, chost, csite = cur[1], cur[3] or '', cur[4] or ''
    if host == '' then host = chost end
    if site == '' then site = csite end
    if state == '' then
      -- a heartbeat (a VM record without a state) proves the VM alive to
      -- the rules engine; it changes nothing of the VM's current state,
      -- and its time must not make a later state report look stale
    elseif cgen and gen < cgen then
      stale = stale + 1
    elseif cgen == gen and cur[2] == state and chost == host and csite == site
        and cur[6] == event and cur[7] == source and cur[8] == attrs then
      -- the same record again: nothing changes
    else
      local since = cur[5]
      if (not cgen) or cur[2] ~= state or not since then since = gen end
      redis.call('HSET', key, 'state', state, 'host', host, 'site', site, 'event', event,
        'source', source, 'attrs', attrs, 'since', since, 'gen', gen, 'recv', recv, 'stored', stored)
      if not cgen then redis.call('SADD', vmsK, id) end
      if chost ~= host then
        move(hostvmsP, chost, host, id)
        if host ~= '' then redis.call('SADD', hostsK, host) end
      end
      if csite ~= site then
        move(sitevmsP, csite, site, id)
        if site ~= '' then redis.call('SADD', sitesK, site) end
      end
      if host ~= '' and site ~= '' and (chost ~= host or csite ~= site) then
        redis.call('SADD', sitehostsP .. site, host)
      end
      applied = applied + 1
    end

  elseif kind == 'host' then
    local pkey, pstart, nf = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    i = i + 3
    local names, values = {}, {}
    for j = 1, nf do
      names[j] = ARGV[i]
      values[j] = ARGV[i + 1]
      i = i + 2
    end
    local key = hostP .. id
    local cur = redis.call('HMGET', key, 'gen', 'reported', 'site', 'rsince', 'event', 'source')
    local cgen, csite = cur[1], cur[3] or ''
    if site == '' then site = csite end
    -- a host record without a state carries facts only
    local reported = state
    if reported == '' then reported = cur[2] or '' end
    if state == '' and nf == 0 then
      -- a heartbeat (a host record with neither state nor facts) proves the
      -- host alive to the rules engine; like a VM's, it changes nothing here
      -- and its time must not make a later report look stale
    elseif cgen and gen < cgen then
      stale = stale + 1
    elseif cgen == gen and (cur[2] or '') == reported and csite == site
        and cur[5] == event and cur[6] == source then
      -- the same record again; facts below are idempotent
    else
      local rsince = cur[4]
      if (not cgen) or (cur[2] or '') ~= reported or not rsince then rsince = gen end
      redis.call('HSET', key, 'reported', reported, 'site', site, 'event', event, 'source', source,
        'rsince', rsince, 'gen', gen, 'recv', recv, 'stored', stored)
      if not cgen then redis.call('SADD', hostsK, id) end
      if csite ~= site then
        if csite ~= '' then redis.call('SREM', sitehostsP .. csite, id) end
        if site ~= '' then
          redis.call('SADD', sitehostsP .. site, id)
          redis.call('SADD', sitesK, site)
        end
      end
      applied = applied + 1
    end
    if nf > 0 then
      -- facts merge per name, newest generated value wins, whatever the
      -- order of arrival; the period's own copy expires after retention
      merge(factsP .. id, gen, names, values)
      merge(pkey, gen, names, values)
      redis.call('PEXPIRE', pkey, ttl)
      local pz = periodsP .. id
      redis.call('ZADD', pz, pstart, pstart)
      redis.call('ZREMRANGEBYSCORE', pz, '-inf', '(' .. (tonumber(pstart) - keep))
      redis.call('PEXPIRE', pz, ttl)
    end

  elseif kind == 'service' then
    local key = svcP .. ARGV[i]
    i = i + 1
    local cur = redis.call('HMGET', key, 'gen', 'state', 'since', 'event', 'source', 'site')
    local cgen = cur[1]
    if site == '' then site = cur[6] or '' end
    if cgen and gen < cgen then
      stale = stale + 1
    elseif cgen == gen and cur[2] == state and cur[4] == event and cur[5] == source and (cur[6] or '') == site then
      -- the same record again
    else
      local since = cur[3]
      if (not cgen) or cur[2] ~= state or not since then since = gen end
      redis.call('HSET', key, 'host', host, 'name', id, 'site', site, 'state', state, 'event', event,
        'source', source, 'since', since, 'gen', gen, 'recv', recv, 'stored', stored)
      if (not cgen) and host ~= '' then redis.call('SADD', hostsvcsP .. host, id) end
      applied = applied + 1
    end

  else
    return redis.error_reply('apply: unknown kind ' .. kind)
  end
end
return {applied, stale}
