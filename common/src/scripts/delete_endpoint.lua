-- delete_endpoint.lua: delete an endpoint and cancel its open deliveries.
--
-- KEYS[1] endpoint hash     hf:{pN}:endpoint:<eid>
-- KEYS[2] open set          hf:{pN}:ep_open:<eid>
-- KEYS[3] held zset         hf:{pN}:ep_held:<eid>
-- KEYS[4] due zset          hf:{pN}:due
-- KEYS[5] inflight zset     hf:{pN}:inflight
-- KEYS[6] rate state        hf:{pN}:rate:<eid>
-- KEYS[7] endpoint counters hf:{pN}:ep_stats:<eid>
-- KEYS[8] endpoint's deliveries by time hf:{pN}:ep_dlv:<eid>
-- KEYS[9] attempt stream    hf:{pN}:attempts:<eid>
-- ARGV[1] partition key prefix  ARGV[2] tenant id  ARGV[3] now (ms)
-- ARGV[4] retention (ms): the log of a deleted endpoint stays readable
-- through its deliveries until then.
--
-- Returns -1 when the endpoint does not exist or belongs to another tenant,
-- else the number of deliveries cancelled. A delivery being attempted right
-- now is cancelled too: bumping its claim counter makes the worker's
-- record.lua call a no-op for its state (and, the endpoint being gone, it
-- logs nothing either).

local prefix = ARGV[1]
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[2] then
  return -1
end
local open = redis.call('SMEMBERS', KEYS[2])
for _, delivery_id in ipairs(open) do
  redis.call('ZREM', KEYS[4], delivery_id)
  redis.call('ZREM', KEYS[5], delivery_id)
  local delivery = prefix .. 'delivery:' .. delivery_id
  if redis.call('EXISTS', delivery) == 1 then
    redis.call('HINCRBY', delivery, 'claims', 1)
    redis.call('HSET', delivery, 'status', 'cancelled', 'next', '', 'last_at', ARGV[3])
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[6], KEYS[7])
redis.call('PEXPIRE', KEYS[8], tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[9], tonumber(ARGV[4]))
return #open
