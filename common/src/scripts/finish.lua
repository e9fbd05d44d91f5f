-- finish.lua: record an attempt and end its delivery (delivered or failed).
--
-- KEYS[1] inflight zset        hf:{pN}:inflight
-- KEYS[2] delivery hash        hf:{pN}:delivery:<did>
-- KEYS[3] endpoint open set    hf:{pN}:ep_open:<eid>
-- KEYS[4] attempt stream       hf:{pN}:attempts:<eid>
-- KEYS[5] endpoint counters    hf:{pN}:ep_stats:<eid>
-- ARGV[1] delivery id  ARGV[2] lease token  ARGV[3] 'delivered' or 'failed'
-- ARGV[4] now (ms)  ARGV[5] stream MAXLEN (approximate)
-- ARGV[6] response status ('' when there was none)
-- ARGV[7] counter field for this attempt's class (e.g. attempts_2xx)
-- ARGV[8..] attempt fields, as name/value pairs, for the stream entry
--
-- Returns {1, attempt entry id} or {0, attempt entry id} when the lease was
-- lost (another worker reclaimed the delivery, or it was cancelled): the
-- attempt is still logged, because it happened, but the state is left alone.

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
redis.call('HSET', KEYS[2], 'status', ARGV[3], 'attempts', (tonumber(d[4]) or 0) + 1,
  'last_at', ARGV[4], 'last_code', ARGV[6], 'attempt_ids', ids, 'next', '')
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
if ARGV[3] == 'delivered' then
  redis.call('HSET', KEYS[5], 'last_success_at', ARGV[4], 'last_success_code', ARGV[6])
else
  redis.call('HSET', KEYS[5], 'last_failure_at', ARGV[4], 'last_failure_code', ARGV[6])
end
return {1, entry}
