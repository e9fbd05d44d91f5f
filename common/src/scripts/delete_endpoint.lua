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
-- ARGV[5] the endpoint's cancel marker (keys.rs: `cancel:<eid>`)
--
-- Returns -1 when the endpoint does not exist or belongs to another tenant,
-- else the number of deliveries cancelled. A delivery being attempted right
-- now is cancelled too: bumping its claim counter makes the worker's
-- record.lua call a no-op for its state (and, the endpoint being gone, it
-- logs nothing either). At most STEP are cancelled here; when more are
-- open, the cancel marker goes into due and the workers' claims cancel the
-- rest, STEP at a time (see claim.lua); the open and held sets expire with
-- the retention in any case.

local prefix = ARGV[1]
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[2] then
  return -1
end
local cancelled, left = cancel_open(prefix, KEYS[2], KEYS[4], KEYS[5], ARGV[3])
redis.call('DEL', KEYS[1], KEYS[6], KEYS[7])
if left > 0 then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
else
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('PEXPIRE', KEYS[8], ARGV[4])
redis.call('PEXPIRE', KEYS[9], ARGV[4])
return cancelled
