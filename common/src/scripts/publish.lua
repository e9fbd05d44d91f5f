-- publish.lua: store an event once and queue its deliveries in the event's
-- home partition, atomically. Deliveries for endpoints in other partitions
-- are queued by fanout.lua (one call per partition).
--
-- KEYS[1] event hash            hf:{pN}:event:<evid>
-- KEYS[2] idempotency key       hf:{pN}:idem:<tid>:<key> (any key of {pN} when ARGV[5] = '0')
-- KEYS[3] due zset              hf:{pN}:due
-- KEYS[4] event deliveries set  hf:{pN}:event_dlv:<evid>
-- KEYS[5] pending fan-outs      hf:{pN}:fanout_pending (an incomplete event
--         is listed there until its fan-out completes; workers finish the
--         ones left behind)
-- KEYS[6] event body            hf:{pN}:event_body:<evid> (a string of its
--         own, so the event's hash stays small enough for a listpack)
-- ARGV[1] partition key prefix  hf:{pN}:
-- ARGV[2] initial delay (ms): the retry schedule's first entry       ARGV[3] retention (ms)   ARGV[4] idempotency TTL (ms)
-- ARGV[5] '1' if an idempotency key is given
-- ARGV[6] event id   ARGV[7] tenant id   ARGV[8] event type   ARGV[9] body (signed JSON)
-- ARGV[10] '1' if every delivery is in this partition (the event is complete)
-- ARGV[11] this partition's number   ARGV[12] wake channel
-- ARGV[13] number of matching endpoints (the event's delivery count)
-- ARGV[14] the partitions holding the event's deliveries (comma-separated)
-- ARGV[15] '1' for a test send (one attempt, outside the statistics)
-- ARGV[16..] pairs: endpoint id, delivery id (endpoints of this partition)
--
-- Returns {1, event id, deliveries created here, complete} for a new event
-- (and the same for a resend of the call that created it),
-- or {0, first event id, its delivery count, its complete flag} when the
-- idempotency key was seen before (nothing is written then).
--
-- Guarantees: the body is written once, before any delivery that points to
-- it; a delivery is created only for an endpoint that exists here, belongs
-- to the tenant and is active; delivery ids are derived from (event,
-- endpoint), so a retried fan-out never duplicates a delivery.
--
-- Where the event's deliveries are listed: a complete event with at most
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

if ARGV[5] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    local first = prefix .. 'event:' .. existing
    local info = redis.call('HMGET', first, 'deliveries', 'complete')
    return {0, existing, tonumber(info[1] or '0'), info[2] or '1'}
  end
end

-- The event's id was made for this request (a repeated idempotency key
-- returned above), so it is new, unless this very call is a resend by the
-- Redis client after a lost reply (the cluster client retries a dropped
-- connection): then it has run, and answers as it did, writing nothing.
local complete = ARGV[10] == '1'
if redis.call('EXISTS', KEYS[6]) == 1 then
  local here
  if complete then
    here = tonumber(redis.call('HGET', KEYS[1], 'deliveries') or '0') or 0
  else
    here = redis.call('SCARD', KEYS[4])
  end
  return {1, ARGV[6], here, ARGV[10]}
end
redis.call('SET', KEYS[6], ARGV[9], 'PX', retention)
if ARGV[5] == '1' then
  redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[4])
end

local tenant = ARGV[7]
local event = {prefix = prefix, id = ARGV[6], home = ARGV[11], tenant = tenant, type = ARGV[8],
  now = now, first_attempt = first_attempt, retention = retention, test = ARGV[15] == '1'}
local created = 0
local queued = {}
local members = {}
for i = 16, #ARGV, 2 do
  local endpoint_id = ARGV[i]
  local delivery_id = ARGV[i + 1]
  local endpoint = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id, 'tenant', 'active')
  if endpoint[1] == tenant and endpoint[2] == '1' then
    create_delivery(event, endpoint_id, delivery_id)
    queued[#queued + 1] = first_attempt
    queued[#queued + 1] = delivery_id
    members[#members + 1] = delivery_id
    created = created + 1
  end
end
in_slices('ZADD', KEYS[3], queued)
-- A complete event's deliveries were all decided here: its exact count.
local count = ARGV[13]
if complete then count = int(created) end
if complete and created <= 2 then
  redis.call('HSET', KEYS[1],
    'id', ARGV[6], 'tenant', ARGV[7], 'type', ARGV[8], 'created', now,
    'complete', ARGV[10], 'deliveries', count, 'partitions', ARGV[14],
    'dlv', table.concat(members, ','))
else
  redis.call('HSET', KEYS[1],
    'id', ARGV[6], 'tenant', ARGV[7], 'type', ARGV[8], 'created', now,
    'complete', ARGV[10], 'deliveries', count, 'partitions', ARGV[14])
  in_slices('SADD', KEYS[4], members)
  if #members > 0 then
    redis.call('PEXPIRE', KEYS[4], retention)
  end
end
redis.call('PEXPIRE', KEYS[1], retention)
if created > 0 then
  redis.call('PUBLISH', ARGV[12], ARGV[11])
end
if not complete then
  redis.call('ZADD', KEYS[5], now, ARGV[6])
end
return {1, ARGV[6], created, ARGV[10]}
