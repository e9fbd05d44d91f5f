-- tenant_deletion_step.lua: save a tenant deletion's progress and renew
-- its lease, or end it, for the worker holding it.
--
-- KEYS[1] deletions hash  hf:tenant_deletions (see tenant_deletion_take.lua)
-- ARGV[1] tenant id  ARGV[2] the holder's token  ARGV[3] lease (ms)
-- ARGV[4] the job's new JSON, or '' when the deletion is complete
--
-- Returns 1 when saved (or ended), 0 when the caller no longer holds the
-- job (its lease expired and another worker took it): nothing is written.

local tenant = ARGV[1]
local lease = redis.call('HGET', KEYS[1], 'lease:' .. tenant)
if not lease or string.match(lease, '^%d+ (.*)$') ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], 'job:' .. tenant, 'lease:' .. tenant)
  return 1
end
redis.call('HSET', KEYS[1], 'job:' .. tenant, ARGV[4],
  'lease:' .. tenant, int(redis_now_ms() + tonumber(ARGV[3])) .. ' ' .. ARGV[2])
return 1
