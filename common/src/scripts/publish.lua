-- publish.lua: store one or more events of a tenant, each body once, and
-- queue their deliveries in the events' home partition, atomically.
-- Deliveries for endpoints in other partitions are queued by fanout.lua
-- (one call per partition). The batch route sends up to a few dozen events
-- sharing a home partition in one call: one EVALSHA, one clock read, one
-- check per endpoint, one ZADD/SADD per index and one wake-up for them all,
-- which is most of what one event alone costs Redis.
--
-- KEYS[1] due zset              hf:{pN}:due
-- KEYS[2] pending fan-outs      hf:{pN}:fanout_pending (an incomplete event
--         is listed there until its fan-out completes; workers finish the
--         ones left behind)
-- then four keys per event, in the events' order:
--   event hash            hf:{pN}:event:<evid>
--   idempotency key       hf:{pN}:idem:<tid>:<key> (the event hash again
--                         when the event has no key)
--   event deliveries set  hf:{pN}:event_dlv:<evid>
--   event body            hf:{pN}:event_body:<evid> (a string of its own,
--                         so the event's hash stays small enough for a
--                         listpack)
-- ARGV[1] partition key prefix  hf:{pN}:
-- ARGV[2] initial delay (ms): the retry schedule's first entry
-- ARGV[3] retention (ms)   ARGV[4] idempotency TTL (ms)
-- ARGV[5] tenant id   ARGV[6] this partition's number   ARGV[7] wake channel
-- ARGV[8] '1' for a test send (one attempt, outside the statistics)
-- ARGV[9] number of events; then, for each event, 8 values and its pairs:
--   '1' if it has an idempotency key, event id, event type, body (signed
--   JSON), '1' if every delivery is in this partition (the event is
--   complete), number of matching endpoints (its delivery count), the
--   partitions holding its deliveries (comma-separated), the number of
--   pairs that follow; then the pairs: endpoint id, delivery id (endpoints
--   of this partition)
--
-- Returns, per event in order, {1, event id, deliveries created here,
-- complete} for a new event (and the same for a resend of the call that
-- created it), or {0, first event id, its delivery count, its complete
-- flag} when the idempotency key was seen before (nothing is written for
-- that event then; a key repeated within one call counts as seen by the
-- later events).
--
-- Guarantees: each body is written once, before any delivery that points
-- to it; a delivery is created only for an endpoint that exists here,
-- belongs to the tenant and is active; delivery ids are derived from
-- (event, endpoint), so a retried fan-out never duplicates a delivery.
--
-- Where an event's deliveries are listed: a complete event with at most
-- two deliveries (the common case) lists them in its hash's `dlv` field
-- (comma-separated; two ids still fit a listpack value) instead of an
-- `event_dlv` set, which would cost a key, a TTL and a hash table of its
-- own. Every other event uses the set (fanout.lua re-runs read it).
-- Readers take the union of both.

local prefix = ARGV[1]
-- Due times use Redis's clock, the one claim.lua compares them with.
local now_ms = redis_now_ms()
local now = int(now_ms)
local first_attempt = int(now_ms + (tonumber(ARGV[2]) or 0))
local retention = ARGV[3]
local idempotency_ttl = ARGV[4]
local tenant = ARGV[5]
local test = ARGV[8] == '1'

local events = tonumber(ARGV[9]) or 0
-- What only pays with several events: each endpoint read once per call,
-- index entries gathered into one ZADD/SADD per index. (For one event,
-- the tables cost more than they save.)
local several = events > 1
local allowed = several and {} or nil

local queued = {}
local pending = nil
local indexes = several and new_delivery_indexes() or nil
local replies = {}
local created_total = 0
local a = 10
for n = 1, events do
  local k = 3 + (n - 1) * 4
  local event_key, idem_key, set_key, body_key = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local has_idempotency_key = ARGV[a] == '1'
  local event_id, event_type, body = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local complete_flag, matched, partitions = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local pairs_from = a + 8
  local pairs_to = pairs_from + 2 * (tonumber(ARGV[a + 7]) or 0) - 1
  a = pairs_to + 1
  local complete = complete_flag == '1'

  local reply
  if has_idempotency_key then
    local existing = redis.call('GET', idem_key)
    -- (Its own id: this call is a resend, answered below.)
    if existing and existing ~= event_id then
      local info = redis.call('HMGET', prefix .. 'event:' .. existing, 'deliveries', 'complete')
      reply = {0, existing, tonumber(info[1] or '0'), info[2] or '1'}
    end
  end
  -- The event's id was made for this request (a repeated idempotency key
  -- was answered above), so it is new, unless this very call is a resend by
  -- the Redis client after a lost reply (the cluster client retries a
  -- dropped connection): then it has run, and answers as it did, writing
  -- nothing.
  if not reply and redis.call('EXISTS', body_key) == 1 then
    local here
    if complete then
      here = tonumber(redis.call('HGET', event_key, 'deliveries') or '0') or 0
    else
      here = redis.call('SCARD', set_key)
    end
    reply = {1, event_id, here, complete_flag}
  end

  if not reply then
    redis.call('SET', body_key, body, 'PX', retention)
    if has_idempotency_key then
      redis.call('SET', idem_key, event_id, 'PX', idempotency_ttl)
    end
    local event = {prefix = prefix, id = event_id, home = ARGV[6], tenant = tenant,
      type = event_type, now = now, first_attempt = first_attempt, retention = retention,
      test = test}
    local members = {}
    for i = pairs_from, pairs_to, 2 do
      local endpoint_id = ARGV[i]
      local delivery_id = ARGV[i + 1]
      -- (Inline, not a function: a closure is made anew on every call.)
      local known = allowed and allowed[endpoint_id]
      if known == nil then
        local endpoint = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id, 'tenant', 'active')
        known = endpoint[1] == tenant and endpoint[2] == '1'
        if allowed then allowed[endpoint_id] = known end
      end
      if known then
        create_delivery(event, endpoint_id, delivery_id, indexes)
        queued[#queued + 1] = first_attempt
        queued[#queued + 1] = delivery_id
        members[#members + 1] = delivery_id
      end
    end
    local created = #members
    created_total = created_total + created
    -- A complete event's deliveries were all decided here: its exact count.
    local count = matched
    if complete then count = int(created) end
    if complete and created <= 2 then
      redis.call('HSET', event_key,
        'id', event_id, 'tenant', tenant, 'type', event_type, 'created', now,
        'complete', complete_flag, 'deliveries', count, 'partitions', partitions,
        'dlv', table.concat(members, ','))
    else
      redis.call('HSET', event_key,
        'id', event_id, 'tenant', tenant, 'type', event_type, 'created', now,
        'complete', complete_flag, 'deliveries', count, 'partitions', partitions)
      in_slices('SADD', set_key, members)
      if created > 0 then
        redis.call('PEXPIRE', set_key, retention)
      end
    end
    redis.call('PEXPIRE', event_key, retention)
    if not complete then
      pending = pending or {}
      pending[#pending + 1] = now
      pending[#pending + 1] = event_id
    end
    reply = {1, event_id, created, complete_flag}
  end
  replies[n] = reply
end

in_slices('ZADD', KEYS[1], queued)
if indexes then write_delivery_indexes(prefix, indexes) end
if pending then in_slices('ZADD', KEYS[2], pending) end
if created_total > 0 then
  redis.call('PUBLISH', ARGV[7], ARGV[6])
end
return replies
