-- tenant_update.lua: change a tenant's name, retention or cap on
-- retained events, or mark it as being deleted (`deleting`).
--
-- KEYS[1] tenant hash  hf:{t:<tid>}:tenant
-- KEYS[2] usage hash   hf:{t:<tid>}:usage (see usage_reserve.lua)
-- ARGV[1] the server's retention (ms), for a tenant without its own
-- ARGV[2..] field, value pairs (`name`, `retention_ms`, `max_events`,
--         `deleting`); an empty value removes the field (back to the
--         server's retention, or no cap)
--
-- A change of the cap or the retention that leaves the tenant capped is
-- written only if its count was started for the retention it will have
-- (usage_rebuild.lua stamps `retention`): a count removed or started for
-- another retention by a change that ran meanwhile would let publishes
-- pass the cap. One that leaves it uncapped removes the count, in the
-- same step.
--
-- Returns 1 when changed, 0 when there is no such tenant, -1 when it is
-- being deleted, -2 when the count must be started (again) first: nothing
-- is written then (a change racing the deletion's last step cannot bring
-- back a record without its other fields).

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'deleting') == 1 then return -1 end
local counted = false
local cap = redis.call('HGET', KEYS[1], 'max_events')
local retention = redis.call('HGET', KEYS[1], 'retention_ms')
for i = 2, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if field == 'max_events' then
    counted = true
    cap = value ~= '' and value or nil
  elseif field == 'retention_ms' then
    counted = true
    retention = value ~= '' and value or nil
  end
end
if counted and cap then
  local stamp = tonumber(redis.call('HGET', KEYS[2], 'retention') or '')
  if stamp ~= tonumber(retention or ARGV[1]) then return -2 end
end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if counted and not cap then redis.call('DEL', KEYS[2]) end
return 1
