-- config_mark.lua: records in one partition that a tenant's publish
-- configuration is at version ARGV[2] or later (config_bump.lua made it),
-- so that publish.lua there refuses calls matched against an older copy.
-- A version never goes back: of two changes announced out of order, the
-- later one's stays.
--
-- KEYS[1] configuration versions   hf:{pN}:tconfig
-- ARGV[1] tenant id   ARGV[2] the version
--
-- Returns 1 when the version was raised, 0 when it already was as high.

local version = tonumber(ARGV[2]) or 0
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if version <= current then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], int(version))
return 1
