-- reschedule.lua: record a failed attempt and queue the next one.
--
-- KEYS[1] inflight zset        hf:{pN}:inflight
-- KEYS[2] delivery hash        hf:{pN}:delivery:<did>
-- KEYS[3] due zset             hf:{pN}:due
-- KEYS[4] attempt stream       hf:{pN}:attempts:<eid>
-- KEYS[5] endpoint counters    hf:{pN}:ep_stats:<eid>
-- ARGV[1] delivery id  ARGV[2] lease token  ARGV[3] next attempt (epoch ms)
-- ARGV[4] now (ms)  ARGV[5] stream MAXLEN (approximate)
-- ARGV[6] response status ('' when there was none)
-- ARGV[7] counter field for this attempt's class
-- ARGV[8..] attempt fields, as name/value pairs
--
-- Returns {1, entry id}, or {0, entry id} when the lease was lost (the
-- attempt is logged; the delivery is left to its new owner).

local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
local entry = redis.call('XADD', KEYS[4], 'MAXLEN', '~', tonumber(ARGV[5]), '*', unpack(fields))
redis.call('HINCRBY', KEYS[5], 'attempts', 1)
redis.call('HINCRBY', KEYS[5], ARGV[7], 1)

local d = redis.call('HMGET', KEYS[2], 'claims', 'status', 'attempt_ids', 'attempts')
if d[1] ~= ARGV[2] or d[2] ~= 'in_flight' then
  return {0, entry}
end
local ids = entry
if d[3] and d[3] ~= '' then ids = d[3] .. ',' .. entry end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'scheduled', 'attempts', (tonumber(d[4]) or 0) + 1,
  'last_at', ARGV[4], 'last_code', ARGV[6], 'attempt_ids', ids, 'next', ARGV[3])
redis.call('HINCRBY', KEYS[5], 'retries', 1)
redis.call('HSET', KEYS[5], 'last_failure_at', ARGV[4], 'last_failure_code', ARGV[6])
return {1, entry}
