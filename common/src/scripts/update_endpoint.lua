-- update_endpoint.lua: change an endpoint's fields; when it is (re)enabled,
-- put the deliveries held while it was disabled back in the due set.
--
-- KEYS[1] endpoint hash   hf:{pN}:endpoint:<eid>
-- KEYS[2] held zset       hf:{pN}:ep_held:<eid>
-- KEYS[3] due zset        hf:{pN}:due
-- KEYS[4] endpoint counters hf:{pN}:ep_stats:<eid>
-- ARGV[1] tenant id  ARGV[2] now (ms)  ARGV[3] wake channel  ARGV[4] partition
-- ARGV[5] the endpoint's release marker (keys.rs: `release:<eid>`)
-- ARGV[6..] field/value pairs to set (only the fields the request changes,
--          so a concurrent change of another field, such as the circuit
--          breaker disabling the endpoint, is not overwritten)
--
-- Returns -1 when the endpoint does not exist or belongs to another tenant
-- (nothing written), else the number of held deliveries released. At most
-- STEP are released here; when more are held, the release marker goes
-- into due and the workers' claims release the rest, STEP at a time (see
-- claim.lua), so neither this call nor any other holds Redis for long.

if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then
  return -1
end
local before = redis.call('HGET', KEYS[1], 'active')
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
end
local released = 0
-- Only a change from disabled to enabled resets the breaker and releases
-- held deliveries (a PATCH of other fields leaves both alone).
if before ~= '1' and redis.call('HGET', KEYS[1], 'active') == '1' then
  -- A fresh start for the circuit breaker: the failing streak that disabled
  -- the endpoint does not count against it again.
  redis.call('HDEL', KEYS[4], 'failing_since')
  redis.call('HDEL', KEYS[1], 'disabled_reason')
  local left
  released, left = release_held(KEYS[2], KEYS[3], ARGV[2])
  if left > 0 then
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
  end
  if released > 0 then
    redis.call('PUBLISH', ARGV[3], ARGV[4])
  end
end
return released
