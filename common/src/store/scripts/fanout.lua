-- fanout.lua: queue an event's deliveries to the endpoints of one
-- partition (the non-home partitions of a new event; every partition when
-- finishing an interrupted fan-out). See publish.lua for what queuing a
-- delivery writes.
--
-- KEYS[1] ready zset      hf:{pN}:ready
-- KEYS[2] queued counter  hf:{pN}:queued
-- ARGV[1] partition key prefix  ARGV[2] initial delay (ms) (an endpoint's
--   own `retry_schedule` has its first entry instead)
-- ARGV[3] event id  ARGV[4] tenant id  ARGV[5] this partition's number
-- ARGV[6] wake channel  ARGV[7..] endpoint ids (of this partition)
--
-- Returns how many of these endpoints have a delivery of the event after
-- the call. Idempotent: an endpoint whose ep_dlv lists the event already
-- is left alone, so the API or a worker can re-run an interrupted fan-out.

local prefix = ARGV[1]
local now_ms, now_us = redis_clock()
local initial_delay = tonumber(ARGV[2]) or 0
local event_id = ARGV[3]
local tenant = ARGV[4]
local have = 0
local created = 0
local wake = false
for i = 7, #ARGV do
  local endpoint_id = ARGV[i]
  local log_key = prefix .. 'ep_dlv:' .. endpoint_id
  if redis.call('ZSCORE', log_key, event_id) then
    have = have + 1
  else
    local h = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id, 'tenant', 'active',
      'rate_limit', 'paused', 'retry_schedule')
    if h[1] == tenant and h[2] == '1' then
      -- Strictly after the endpoint's newest entry (see publish.lua).
      local last = redis.call('ZRANGE', log_key, -1, -1, 'WITHSCORES')
      local score = now_us
      if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
      local at = now_ms + (tonumber(string.match(h[5] or '', '^(%d+)') or '') or initial_delay)
      if (tonumber(h[3] or '') or 0) > 0 then
        local stored = redis.call('GET', prefix .. 'rate:' .. endpoint_id)
        local tat = stored and tonumber(string.match(stored, '^(%S+)'))
        if tat and tat > at then at = math.ceil(tat) end
      end
      -- The ready set first: a script stopped by an error keeps what it
      -- wrote, and a log entry without its endpoint in the ready set
      -- would be skipped by a re-run (it finds the event listed).
      -- (Waking as publish.lua does.)
      -- (A paused endpoint stays out of the ready set: its deliveries wait
      -- in the log until it is resumed.)
      if h[4] ~= '1' and
        (redis.call('ZADD', KEYS[1], 'LT', 'CH', int(at), endpoint_id) > 0 or at > now_ms) then
        wake = true
      end
      redis.call('ZADD', log_key, int(score), event_id)
      created = created + 1
      have = have + 1
    end
  end
end
if created > 0 then redis.call('INCRBY', KEYS[2], int(created)) end
if wake then redis.call('PUBLISH', ARGV[6], ARGV[5]) end
return have
