-- update_endpoint.lua: change an endpoint's fields; when it is (re)enabled
-- or resumed, put it back in its partition's ready set, so the deliveries
-- held while it was disabled or paused (its ep_dlv past qhead, and its
-- ep_due) go out again, in order.
--
-- KEYS[1] endpoint hash     hf:{pN}:endpoint:<eid>
-- KEYS[2] endpoint counters hf:{pN}:ep_stats:<eid>
-- KEYS[3] ready zset        hf:{pN}:ready
-- KEYS[4] endpoint ep_due   hf:{pN}:ep_due:<eid>
-- KEYS[5] endpoint log      hf:{pN}:ep_dlv:<eid>
-- KEYS[6] ordered endpoints held by a retry  hf:{pN}:fifo_heads
-- ARGV[1] tenant id  ARGV[2] wake channel  ARGV[3] partition
-- ARGV[4] endpoint id
-- ARGV[5..] field/value pairs to set (only the fields the request changes,
--          so a concurrent change of another field, such as the circuit
--          breaker disabling the endpoint, is not overwritten)
--
-- A change of `max_in_flight` or `ordering` also releases an endpoint
-- claim.lua parked at its old limit: it is due again now, and the next
-- claim applies the new one. Leaving FIFO ordering takes the endpoint out
-- of KEYS[6] (record.lua adds it back only while it is ordered); from then
-- on its waiting deliveries go out as any endpoint's do. Switching to FIFO
-- lets the attempts in flight finish; no new one starts until they have.
-- A change of `ordering` or `retry_schedule` (whose first entry delays
-- first attempts) makes an enabled endpoint with deliveries waiting due
-- now, so the next claim scores it by the new rules rather than the old.
--
-- Returns -1 when the endpoint does not exist or belongs to another tenant
-- (nothing written); else {released, the endpoint's hash after the change
-- (HGETALL)}, released being 1 when it was enabled or resumed and has
-- deliveries waiting, else 0. Releasing is one ZADD however many deliveries were held: they
-- never left their endpoint's own sets.

if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then
  return -1
end
local before = redis.call('HGET', KEYS[1], 'active')
local was_paused = redis.call('HGET', KEYS[1], 'paused') == '1'
local fields = {}
local new_cap = false
local reschedule = false
for i = 5, #ARGV do
  fields[#fields + 1] = ARGV[i]
  if i % 2 == 1 and (ARGV[i] == 'max_in_flight' or ARGV[i] == 'ordering') then new_cap = true end
  if i % 2 == 1 and (ARGV[i] == 'ordering' or ARGV[i] == 'retry_schedule') then
    reschedule = true
  end
  if i % 2 == 1 and ARGV[i] == 'ordering' and ARGV[i + 1] ~= 'fifo' then
    redis.call('ZREM', KEYS[6], ARGV[4])
  end
end
if #fields > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
end
if new_cap and before == '1' and redis.call('HGET', KEYS[1], 'parked') == '1' then
  redis.call('HDEL', KEYS[1], 'parked')
  redis.call('ZADD', KEYS[3], 'LT', int(redis_now_ms()), ARGV[4])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
-- Only a change from disabled to enabled resets the breaker; it and a
-- resume (paused to not paused, while enabled) release held deliveries (a
-- PATCH of other fields leaves both alone).
local now = redis.call('HMGET', KEYS[1], 'active', 'paused')
local enabled = before ~= '1' and now[1] == '1'
local resumed = was_paused and now[2] ~= '1'
if enabled then
  -- A fresh start for the circuit breaker: the failing streak that disabled
  -- the endpoint does not count against it again.
  redis.call('HDEL', KEYS[2], 'failing_since')
  redis.call('HDEL', KEYS[1], 'disabled_reason')
end
local released = 0
if (enabled or resumed or reschedule) and now[1] == '1' and now[2] ~= '1' then
  local head = redis.call('HGET', KEYS[1], 'qhead')
  local lower = '-inf'
  if head then lower = '(' .. head end
  local waiting = redis.call('ZCARD', KEYS[4]) > 0 or
    #redis.call('ZRANGEBYSCORE', KEYS[5], lower, '+inf', 'LIMIT', '0', '1') > 0
  if waiting then
    -- Due now: the claim scores it by its first due delivery.
    redis.call('ZADD', KEYS[3], int(redis_now_ms()), ARGV[4])
    redis.call('PUBLISH', ARGV[2], ARGV[3])
    if enabled or resumed then released = 1 end
  end
end
return {released, redis.call('HGETALL', KEYS[1])}
