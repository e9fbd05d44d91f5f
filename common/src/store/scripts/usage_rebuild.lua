-- usage_rebuild.lua: start a tenant's count of retained events from its
-- event index, without losing what publishes count meanwhile.
--
-- KEYS[1] usage hash  hf:{t:<tid>}:usage (see usage_reserve.lua)
-- ARGV[1] the oldest hour still counted  ARGV[2] the hash's TTL (ms)
-- ARGV[3] the retention (ms) the count is for, stamped as `retention`
-- (tenant_update.lua writes a cap only over a count for its retention)
-- ARGV[4..] hour, events pairs: what the index holds per hour
--
-- Each hour keeps the larger of what it had and what the index says: an
-- event counted by a publish that is not indexed yet is not lost, and one
-- indexed before the count began is added. Hours before ARGV[1] go, and
-- `total` is summed anew. Returns the total.

local from = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  local field = 'h' .. ARGV[i]
  local have = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
  if tonumber(ARGV[i + 1]) > have then
    redis.call('HSET', KEYS[1], field, ARGV[i + 1])
  end
end
local total = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local hour = tonumber(string.match(field, '^h(%d+)$') or '')
  if hour then
    if hour < from then
      redis.call('HDEL', KEYS[1], field)
    else
      total = total + (tonumber(redis.call('HGET', KEYS[1], field)) or 0)
    end
  end
end
redis.call('HSET', KEYS[1], 'total', int(total), 'from', ARGV[1], 'retention', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
