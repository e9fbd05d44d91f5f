-- fanout.lua: queue an event's deliveries for the endpoints of one
-- partition other than the event's home partition (see publish.lua).
--
-- KEYS[1] due zset              hf:{pN}:due
-- KEYS[2] event deliveries set  hf:{pN}:event_dlv:<evid>
-- ARGV[1] partition key prefix  ARGV[2] initial delay (ms)  ARGV[3] retention (ms)
-- ARGV[4] event id  ARGV[5] tenant id  ARGV[6] event type
-- ARGV[7] the event's home partition (where its body lives)
-- ARGV[8] this partition's number  ARGV[9] wake channel
-- ARGV[10] '1' for a test send (one attempt, outside the statistics)
-- ARGV[11..] pairs: endpoint id, delivery id
--
-- Returns the number of deliveries that exist for these endpoints after the
-- call. Idempotent: a delivery id that exists is left alone, so the API can
-- re-run an interrupted fan-out.

local prefix = ARGV[1]
-- Due times use Redis's clock, the one claim.lua compares them with.
local now_ms = redis_now_ms()
local now = int(now_ms)
local first_attempt = int(now_ms + (tonumber(ARGV[2]) or 0))
local retention = ARGV[3]
local tenant = ARGV[5]
local event = {prefix = prefix, id = ARGV[4], home = ARGV[7], tenant = tenant, type = ARGV[6],
  now = now, first_attempt = first_attempt, retention = retention, test = ARGV[10] == '1'}
local created = 0
-- A first run finds no deliveries of the event here; only a re-run must
-- skip existing ones.
local fresh = redis.call('SCARD', KEYS[2]) == 0
local queued = {}
local members = {}
for i = 11, #ARGV, 2 do
  local endpoint_id = ARGV[i]
  local delivery_id = ARGV[i + 1]
  local endpoint = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id, 'tenant', 'active')
  if endpoint[1] == tenant and endpoint[2] == '1' then
    if fresh or redis.call('EXISTS', prefix .. 'delivery:' .. delivery_id) == 0 then
      create_delivery(event, endpoint_id, delivery_id, nil)
      queued[#queued + 1] = first_attempt
      queued[#queued + 1] = delivery_id
      members[#members + 1] = delivery_id
    end
    created = created + 1
  end
end
in_slices('ZADD', KEYS[1], queued)
in_slices('SADD', KEYS[2], members)
if created > 0 then
  redis.call('PEXPIRE', KEYS[2], retention)
  redis.call('PUBLISH', ARGV[9], ARGV[8])
end
return created
