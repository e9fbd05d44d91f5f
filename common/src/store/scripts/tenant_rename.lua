-- tenant_rename.lua: give a tenant a new name.
--
-- KEYS[1] tenant hash  hf:{t:<tid>}:tenant
-- ARGV[1] the new name
--
-- Returns 1 when renamed, 0 when there is no such tenant, -1 when it is
-- being deleted: nothing is written then (a rename racing the deletion's
-- last step cannot bring back a record without its other fields).

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'deleting') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'name', ARGV[1])
return 1
