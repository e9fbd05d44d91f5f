-- retry.lua: queue a new attempt of one delivery now (a manual retry, or
-- one delivery of a replay).
--
-- KEYS[1] endpoint hash      hf:{pN}:endpoint:<eid>
-- KEYS[2] endpoint log       hf:{pN}:ep_dlv:<eid> (the delivery exists if
--         its event is listed here)
-- KEYS[3] endpoint ep_due    hf:{pN}:ep_due:<eid>
-- KEYS[4] ready zset         hf:{pN}:ready
-- KEYS[5] inflight zset      hf:{pN}:inflight
-- KEYS[6] states hash        hf:{pN}:states:<bucket>
-- KEYS[7] queued counter     hf:{pN}:queued
-- ARGV[1] tenant id  ARGV[2] delivery id  ARGV[3] event id  ARGV[4] endpoint id
-- ARGV[5] wake channel  ARGV[6] partition
-- ARGV[7] which states may be retried, comma-separated (the API allows
--         failed,delivered,scheduled; a replay of failed deliveries allows
--         failed only)
-- ARGV[8] '1' when the event is a test send and test sends are left alone
--         (a replay re-sends real deliveries)
-- ARGV[9] when the states hash may expire (epoch ms)
--
-- Returns {code, status before}: code 1 queued, 0 left alone (its state is
-- not in ARGV[7]; a pending one is already queued), -1 no such delivery for
-- this tenant, -2 cancelled (its endpoint is gone), -3 endpoint disabled,
-- -4 being attempted right now.
-- A failed or delivered delivery gets exactly one more attempt (same
-- webhook-id); a scheduled one has its next attempt moved to now and keeps
-- the rest of its schedule.

local tenant = redis.call('HGET', KEYS[1], 'tenant')
if not tenant then
  -- The endpoint is gone (the API has checked the event's tenant).
  return {-2, 'cancelled'}
end
if tenant ~= ARGV[1] or not redis.call('ZSCORE', KEYS[2], ARGV[3]) then return {-1, ''} end
local field = string.sub(ARGV[2], DLV_BODY)
local s = read_state(redis.call('HGET', KEYS[6], field), field)
local status = (s and s.status) or 'pending'
if redis.call('ZSCORE', KEYS[5], ARGV[2]) then return {-4, 'in_flight'} end
if ARGV[8] == '1' then return {0, status} end
if redis.call('HGET', KEYS[1], 'active') ~= '1' then return {-3, status} end
local allowed = false
for state in string.gmatch(ARGV[7], '[^,]+') do
  if state == status then allowed = true end
end
if not allowed then return {0, status} end

local now = int(redis_now_ms())
if status == 'scheduled' then
  s.next = now
else
  s.status = 'pending'
  s.max = int(s.attempts + 1)
  s.next = now
  redis.call('INCRBY', KEYS[7], '1')
end
redis.call('HSET', KEYS[6], field, write_state(s, field))
redis.call('PEXPIREAT', KEYS[6], ARGV[9])
redis.call('ZADD', KEYS[3], now, ARGV[3])
redis.call('ZADD', KEYS[4], 'LT', now, ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, status}
