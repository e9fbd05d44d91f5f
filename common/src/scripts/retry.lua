-- retry.lua: queue a new attempt of one delivery now (a manual retry, or
-- one delivery of a replay).
--
-- KEYS[1] delivery hash       hf:{pN}:delivery:<did>
-- KEYS[2] due zset            hf:{pN}:due
-- KEYS[3] endpoint open set   hf:{pN}:ep_open:<eid>
-- KEYS[4] endpoint hash       hf:{pN}:endpoint:<eid>
-- KEYS[5] endpoint held zset  hf:{pN}:ep_held:<eid> (a delivery still held
--         after its endpoint was re-enabled, waiting for a step of the
--         release, is taken out: the retry queues it, the release must not
--         queue it again)
-- ARGV[1] tenant id  ARGV[2] delivery id  ARGV[3] wake channel
-- ARGV[4] partition  ARGV[5] which states may be retried, comma-separated
--         (the API allows failed,delivered,scheduled; a replay of failed
--         deliveries allows failed only)
-- ARGV[6] '1' to leave test sends alone (a replay re-sends real deliveries)
--
-- Returns {code, status before}: code 1 queued, 0 left alone (its state is
-- not in ARGV[5]; pending ones are already queued), -1 no such delivery for
-- this tenant, -2 cancelled, -3 endpoint disabled or deleted, -4 being
-- attempted right now.
-- A failed or delivered delivery gets exactly one more attempt (same
-- webhook-id); a scheduled one has its next attempt moved to now and keeps
-- the rest of its schedule.

local d = redis.call('HMGET', KEYS[1], 'tenant', 'status', 'attempts', 'test')
if d[1] ~= ARGV[1] then return {-1, ''} end
local status = d[2]
if ARGV[6] == '1' and d[4] == '1' then return {0, status} end
if status == 'cancelled' then return {-2, status} end
if status == 'in_flight' then return {-4, status} end
if redis.call('HGET', KEYS[4], 'active') ~= '1' then return {-3, status} end
local allowed = false
for state in string.gmatch(ARGV[5], '[^,]+') do
  if state == status then allowed = true end
end
if not allowed then return {0, status} end

local now = redis_now_ms()
if status == 'scheduled' then
  redis.call('HSET', KEYS[1], 'next', now)
else
  redis.call('HSET', KEYS[1], 'status', 'pending', 'next', now,
    'max_attempts', (tonumber(d[3]) or 0) + 1)
  redis.call('SADD', KEYS[3], ARGV[2])
end
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {1, status}
