-- capped_add.lua: adds a field to a tenant's hash of webhooks or event
-- types unless the hash is full, in one step (an HLEN check followed by a
-- separate write let concurrent creates overshoot the cap).
--
-- KEYS[1] the tenant's hash   hf:{t:<tenant>}:endpoints or :event_types
-- ARGV[1] the cap (most fields the hash may hold)
-- ARGV[2] field
-- ARGV[3] value
--
-- Returns 1 when the field was added, 0 when it exists (nothing written),
-- -1 when the hash is full (nothing written).

if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  return 0
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
