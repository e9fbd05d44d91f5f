-- config_bump.lua: counts up the version of a tenant's publish
-- configuration (its endpoint index, event types and cap), after a change
-- of one of them is written and before config_mark.lua announces it to
-- the partitions. A tenant that is gone (its deletion's last step ran)
-- gets no hash back.
--
-- KEYS[1] tenant hash   hf:{t:<tid>}:tenant
--
-- Returns the new version, or 0 when the tenant is gone.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'config_version', 1)
