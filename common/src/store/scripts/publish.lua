-- publish.lua: store one or more events of a tenant sharing a home
-- partition, each record once, and queue their deliveries to the endpoints
-- of that partition, atomically. Deliveries to endpoints in other
-- partitions are queued by fanout.lua (one call per partition). The batch
-- route sends up to a few dozen events sharing a home partition in one
-- call: one EVALSHA, one clock read, one check per endpoint, one ZADD per
-- endpoint and one wake-up for them all.
--
-- A delivery is not written as such: queuing one is adding the event id to
-- its endpoint's ep_dlv (its delivery log, and past the endpoint's qhead
-- its queue of first attempts; see claim.lua) and making sure the endpoint
-- is in the partition's ready set by the time the delivery is due.
--
-- KEYS[1] ready zset            hf:{pN}:ready
-- KEYS[2] pending fan-outs      hf:{pN}:fanout_pending (an incomplete event
--         is listed there until its fan-out completes; workers finish the
--         ones left behind)
-- KEYS[3] queued counter        hf:{pN}:queued
-- KEYS[4] configuration versions hf:{pN}:tconfig
-- then two keys per event, in the events' order:
--   events hash           hf:{pN}:events:<bucket of the event id>
--   idempotency key       hf:{pN}:idem:<tid>:<key> (the events hash again
--                         when the event has no key)
-- ARGV[1] partition key prefix  hf:{pN}:
-- ARGV[2] initial delay (ms): the retry schedule's first entry (an
--   endpoint with a `retry_schedule` of its own uses that one's)
-- ARGV[3] idempotency TTL (ms)   ARGV[4] tenant id
-- ARGV[5] this partition's number   ARGV[6] wake channel
-- ARGV[7] number of events
-- ARGV[8] the id prefix of the oldest event still within retention
--   (`ids::time_prefix`): the tenant's event index (tevents:<tid>, every
--   new event but a test send, scored 0 so it orders by id, which is by
--   time) loses the entries below it once per call
-- ARGV[9] the version of the tenant's publish configuration (endpoint
--   index, event types, cap) the caller matched the events against, from
--   its cache; empty when it read them from Redis for this request
-- then, for each event, 7 values and its
--   endpoints: '1' if it has an idempotency key, event id, the event's
--   record (stored_event.rs), '1' if every delivery is in this partition
--   (the event is complete), the number of matching endpoints (its
--   delivery count), when its events hash may expire (epoch ms: the
--   bucket's end plus retention), the number of endpoint ids that follow
--   (those of this partition); then those endpoint ids
--
-- Answers four values per event in one flat array (a nested table per
-- event costs Redis more to answer than the values in it):
-- Returns -1, '', <version announced here>, '' for every event, writing
-- nothing, when ARGV[9] is older than the version KEYS[4] holds for the
-- tenant: the configuration changed after the caller's copy was read (and
-- that change was answered only once its version was written here), so
-- the caller matches the events again against what Redis holds now. (A
-- resend of a call that ran answers as it did instead: its events were
-- matched before the change. A call of repeats only answers them: it
-- writes nothing either way.)
-- Otherwise, per event in order, 1, event id, deliveries created here,
-- complete for a new event (and the same for a resend of the call that
-- created it), or 0, first event id, its delivery count, its complete
-- flag when the idempotency key was seen before (nothing is written for
-- that event then; a key repeated within one call counts as seen by the
-- later events).
--
-- Guarantees: each record is written once, before any delivery that
-- points to it; a delivery is queued only for an endpoint that exists
-- here, belongs to the tenant and is active; an endpoint's ep_dlv scores
-- are Redis's clock in microseconds, made strictly increasing per endpoint
-- (claim.lua walks them from its qhead on, so a new entry must never sort
-- before one already handed out).

local prefix = ARGV[1]
-- Due times use Redis's clock, the one claim.lua compares them with.
local now_ms, now_us = redis_clock()
local initial_delay = tonumber(ARGV[2]) or 0
local idempotency_ttl = ARGV[3]
local tenant = ARGV[4]

local events = tonumber(ARGV[7]) or 0
-- The version announced here, when it is newer than the caller's copy
-- (ARGV[9]): the call is refused below, before its first write.
local stale_at = nil
if ARGV[9] ~= '' then
  local announced = tonumber(redis.call('HGET', KEYS[4], tenant) or '0') or 0
  if announced > (tonumber(ARGV[9]) or 0) then stale_at = announced end
end
-- Per endpoint of this call: whether it may receive, the next free ep_dlv
-- score and the entries to add; read once per call.
local endpoints = {}
local order = {}
local expiring = {}
local pending = nil
local replies = {}
local function answer(new, event_id, deliveries, complete)
  replies[#replies + 1] = new
  replies[#replies + 1] = event_id
  replies[#replies + 1] = deliveries
  replies[#replies + 1] = complete
end
local created_total = 0
local a = 10
local index_key = prefix .. 'tevents:' .. tenant
local indexed = {}
-- Whether this call ran before (decided at its first event not answered
-- as a repeat, below).
local resent = nil
for n = 1, events do
  local k = 5 + (n - 1) * 2
  local events_key, idem_key = KEYS[k], KEYS[k + 1]
  local has_idempotency_key = ARGV[a] == '1'
  local event_id, record, complete_flag = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local matched, expire_at = ARGV[a + 4], ARGV[a + 5]
  local from = a + 7
  local to = from + (tonumber(ARGV[a + 6]) or 0) - 1
  a = to + 1

  local answered = false
  if has_idempotency_key then
    local existing = redis.call('GET', idem_key)
    if existing then
      local space = string.find(existing, ' ', 1, true)
      local first_id, count = existing, '0'
      if space then
        first_id, count = string.sub(existing, 1, space - 1), string.sub(existing, space + 1)
      end
      -- (Its own id: this call is a resend, answered below.)
      if first_id ~= event_id then
        local incomplete = redis.call('ZSCORE', KEYS[2], first_id)
        answer(0, first_id, tonumber(count) or 0, incomplete and '0' or '1')
        answered = true
      end
    end
  end
  -- The event's id was made for this request, so it is new, unless this
  -- very call is a resend by the Redis client after a lost reply (the
  -- cluster client retries a dropped connection): then it has run, and
  -- answers as it did, writing nothing. A call is atomic, so it stored
  -- every event not answered as a repeat, or none: the first such event
  -- decides for the whole call (one HEXISTS per call, not per event).
  if not answered and resent == nil then
    resent = redis.call('HEXISTS', events_key, event_id) == 1
    -- Matched against a copy a change has outdated: refused, nothing
    -- written yet (the repeats before wrote nothing). A resend of a call
    -- that ran answers as it did: it was matched before the change.
    if stale_at and not resent then
      local stale, version = {}, int(stale_at)
      for i = 1, events * 4, 4 do
        stale[i], stale[i + 1], stale[i + 2], stale[i + 3] = -1, '', version, ''
      end
      return stale
    end
  end
  if not answered and resent then
    local here = 0
    for i = from, to do
      if redis.call('ZSCORE', prefix .. 'ep_dlv:' .. ARGV[i], event_id) then here = here + 1 end
    end
    answer(1, event_id, here, complete_flag)
    answered = true
  end

  if not answered then
    redis.call('HSET', events_key, event_id, record)
    if string.sub(record, 1, 1) ~= 't' then
      indexed[#indexed + 1] = 0
      indexed[#indexed + 1] = event_id
    end
    expiring[events_key] = expire_at
    local created = 0
    for i = from, to do
      local endpoint_id = ARGV[i]
      local e = endpoints[endpoint_id]
      if not e then
        local h = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id, 'tenant', 'active',
          'rate_limit', 'paused', 'retry_schedule')
        e = {ok = h[1] == tenant and h[2] == '1',
          delay = tonumber(string.match(h[5] or '', '^(%d+)') or '') or initial_delay}
        if e.ok then
          e.limited = (tonumber(h[3] or '') or 0) > 0
          e.paused = h[4] == '1'
          local last = redis.call('ZRANGE', prefix .. 'ep_dlv:' .. endpoint_id, -1, -1, 'WITHSCORES')
          e.next = now_us
          if last[2] and tonumber(last[2]) >= now_us then e.next = tonumber(last[2]) + 1 end
          e.adds = {}
          order[#order + 1] = endpoint_id
        end
        endpoints[endpoint_id] = e
      end
      if e.ok then
        e.adds[#e.adds + 1] = int(e.next)
        e.adds[#e.adds + 1] = event_id
        e.next = e.next + 1
        created = created + 1
      end
    end
    created_total = created_total + created
    if has_idempotency_key then
      -- A complete event's deliveries were all decided here: its exact count.
      local count = matched
      if complete_flag == '1' then count = int(created) end
      redis.call('SET', idem_key, event_id .. ' ' .. count, 'PX', idempotency_ttl)
    end
    if complete_flag ~= '1' then
      pending = pending or {}
      pending[#pending + 1] = int(now_ms)
      pending[#pending + 1] = event_id
    end
    answer(1, event_id, created, complete_flag)
  end
end

for key, at in pairs(expiring) do
  redis.call('PEXPIREAT', key, at)
end
local wake = false
for _, endpoint_id in ipairs(order) do
  local e = endpoints[endpoint_id]
  if #e.adds > 0 and e.paused then
    -- Paused: the deliveries wait in the log, in order, and the endpoint
    -- stays out of the ready set until it is resumed (update_endpoint.lua).
    in_slices('ZADD', prefix .. 'ep_dlv:' .. endpoint_id, e.adds)
  elseif #e.adds > 0 then
    -- Ready when the first new delivery is due, or at the endpoint's next
    -- rate-limit slot if that is later (else every publish would bring a
    -- limited endpoint forward for a claim that cannot use it).
    local at = now_ms + e.delay
    if e.limited then
      local stored = redis.call('GET', prefix .. 'rate:' .. endpoint_id)
      local tat = stored and tonumber(string.match(stored, '^(%S+)'))
      if tat and tat > at then at = math.ceil(tat) end
    end
    -- Workers are woken only when this made the endpoint due sooner (or
    -- it is due later than now): one already due in the ready set has a
    -- worker on its way (see claim.lua's hand-off), and a wake-up per
    -- event would cost Redis and the workers more than the claim.
    if redis.call('ZADD', KEYS[1], 'LT', 'CH', int(at), endpoint_id) > 0 or at > now_ms then
      wake = true
    end
    -- (After the ready set: see fanout.lua.)
    in_slices('ZADD', prefix .. 'ep_dlv:' .. endpoint_id, e.adds)
  end
end
if #indexed > 0 then
  in_slices('ZADD', index_key, indexed)
  redis.call('ZREMRANGEBYLEX', index_key, '-', '(' .. ARGV[8])
end
if pending then in_slices('ZADD', KEYS[2], pending) end
if created_total > 0 then redis.call('INCRBY', KEYS[3], int(created_total)) end
if wake then redis.call('PUBLISH', ARGV[6], ARGV[5]) end
return replies
