-- tenant_update.lua: change a tenant's name, retention or cap on
-- retained events, or mark it as being deleted (`deleting`).
--
-- KEYS[1] tenant hash  hf:{t:<tid>}:tenant
-- ARGV    field, value pairs (`name`, `retention_ms`, `max_events`,
--         `deleting`); an
--         empty value removes the field (back to the server's retention,
--         or no cap)
--
-- Returns 1 when changed, 0 when there is no such tenant, -1 when it is
-- being deleted: nothing is written then (a change racing the deletion's
-- last step cannot bring back a record without its other fields).

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'deleting') == 1 then return -1 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
