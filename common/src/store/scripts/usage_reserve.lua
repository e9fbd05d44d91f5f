-- usage_reserve.lua: count events against a tenant's cap on retained
-- events (`max_events` in its hash), or give counted events back.
--
-- KEYS[1] usage hash   hf:{t:<tid>}:usage (`h<hour>` → events published in
--         that hour (hours since the epoch), `total`, `from`: the oldest
--         hour counted)
-- KEYS[2] tenant hash  hf:{t:<tid>}:tenant (`max_events`, `retention_ms`)
-- ARGV[1] events to add, or with ARGV[3] = 'back', to give back
-- ARGV[2] the server's retention (ms), for a tenant without its own
-- ARGV[3] 'add' or 'back'  ARGV[4] (back) the hour they were added in
--
-- An event counts from the hour it was published in until that hour is
-- past retention, so the count is never below what is retained (it may
-- count an event up to an hour longer than it is kept). Hours past
-- retention are dropped first, in the same step.
--
-- Returns {1, total, hour} when added (in that hour) or given back
-- ({1, -1, 0}: the tenant has no cap, nothing counted), or {0, total, cap, ms until the oldest counted
-- hour leaves the count} when adding would pass the cap: nothing is added.

local cap = tonumber(redis.call('HGET', KEYS[2], 'max_events') or '')
if not cap then return {1, -1, 0} end
local n = tonumber(ARGV[1])
local now = redis_now_ms()
local retention = tonumber(redis.call('HGET', KEYS[2], 'retention_ms') or '') or tonumber(ARGV[2])
local HOUR = 3600000
local hour = math.floor(now / HOUR)
local first = math.floor((now - retention) / HOUR)
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local from = tonumber(redis.call('HGET', KEYS[1], 'from') or '') or first
if first - from > 64 then
  -- Long idle: look at the hours there are, not every hour in between.
  local fields = redis.call('HKEYS', KEYS[1])
  for _, field in ipairs(fields) do
    local h = tonumber(string.match(field, '^h(%d+)$') or '')
    if h and h < first then
      total = total - tonumber(redis.call('HGET', KEYS[1], field) or '0')
      redis.call('HDEL', KEYS[1], field)
    end
  end
else
  while from < first do
    local field = 'h' .. int(from)
    local c = redis.call('HGET', KEYS[1], field)
    if c then
      total = total - tonumber(c)
      redis.call('HDEL', KEYS[1], field)
    end
    from = from + 1
  end
end
if first > from then from = first end
if total < 0 then total = 0 end

if ARGV[3] == 'back' then
  local field = 'h' .. ARGV[4]
  local c = tonumber(redis.call('HGET', KEYS[1], field) or '')
  if c then
    local back = math.min(n, c)
    if c - back > 0 then
      redis.call('HSET', KEYS[1], field, int(c - back))
    else
      redis.call('HDEL', KEYS[1], field)
    end
    total = total - back
  end
elseif total + n > cap then
  -- The oldest counted hour leaves the count when it is past retention.
  local oldest = first
  while oldest <= hour and not redis.call('HGET', KEYS[1], 'h' .. int(oldest)) do
    oldest = oldest + 1
  end
  redis.call('HSET', KEYS[1], 'total', int(total), 'from', int(from))
  redis.call('PEXPIRE', KEYS[1], int(retention + HOUR))
  return {0, int(total), int(cap), int(math.max(0, (oldest + 1) * HOUR + retention - now))}
else
  redis.call('HINCRBY', KEYS[1], 'h' .. int(hour), n)
  total = total + n
end
redis.call('HSET', KEYS[1], 'total', int(total), 'from', int(from))
redis.call('PEXPIRE', KEYS[1], int(retention + HOUR))
return {1, int(total), int(hour)}
