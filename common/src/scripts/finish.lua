-- finish.lua: record an attempt and end its delivery (delivered or failed).
--
-- KEYS[1] inflight zset        hf:{pN}:inflight
-- KEYS[2] delivery hash        hf:{pN}:delivery:<did>
-- KEYS[3] endpoint open set    hf:{pN}:ep_open:<eid>
-- KEYS[4] attempt stream       hf:{pN}:attempts:<eid>
-- KEYS[5] endpoint counters    hf:{pN}:ep_stats:<eid>
-- KEYS[6] endpoint hash        hf:{pN}:endpoint:<eid>
-- KEYS[7] 5-minute stats bucket hf:{pN}:ep_b5:<eid>:<start>
-- KEYS[8] hourly stats bucket   hf:{pN}:ep_bh:<eid>:<start>
-- ARGV[1] delivery id  ARGV[2] lease token  ARGV[3] 'delivered' or 'failed'
-- ARGV[4] now (ms)  ARGV[5] stream MAXLEN (approximate)
-- ARGV[6] response status ('' when there was none)
-- ARGV[7] counter field for this attempt's class (e.g. attempts_2xx)
-- ARGV[8] '1' if the attempt succeeded (2xx)
-- ARGV[9] circuit breaker: disable the endpoint after failing without a
--         success for this long (ms)
-- ARGV[10] '1' to disable the endpoint now (it answered 410 Gone)
-- ARGV[11] '1' for a test send: logged, but outside the statistics and the
--          circuit breaker
-- ARGV[12] the latency histogram field of this attempt (lat_<bin>)
-- ARGV[13] oldest stream id to keep (retention), ARGV[14] 5-minute bucket
--          TTL (ms), ARGV[15] hourly bucket TTL (ms)
-- ARGV[16..] attempt fields, as name/value pairs, for the stream entry
--
-- Returns {held, attempt entry id, disabled}: held is 0 when the lease was
-- lost (another worker reclaimed the delivery, or it was cancelled) - the
-- attempt is still logged, because it happened, but the state is left
-- alone; disabled is 1 when this attempt tripped the circuit breaker.

-- A repeat of a call that already moved this delivery (the client resent
-- it after losing the reply): the same answer, nothing recorded twice.
local rec = redis.call('HMGET', KEYS[2], 'recorded', 'attempt_ids')
local mark = ARGV[2] .. ':'
if rec[1] and string.sub(rec[1], 1, #mark) == mark then
  return {1, string.match(rec[2] or '', '([^,]*)$'), tonumber(string.sub(rec[1], #mark + 1)) or 0}
end

-- The endpoint was deleted while this attempt ran: its delivery is already
-- cancelled; write nothing that would outlive the endpoint.
if redis.call('EXISTS', KEYS[6]) == 0 then
  return {0, '', 0}
end

local fields = {}
for i = 16, #ARGV do fields[#fields + 1] = ARGV[i] end
local entry = redis.call('XADD', KEYS[4], 'MAXLEN', '~', tonumber(ARGV[5]), '*', unpack(fields))
redis.call('XTRIM', KEYS[4], 'MINID', '~', ARGV[13])
local counted = ARGV[11] ~= '1'
if counted then
  redis.call('HINCRBY', KEYS[5], 'attempts', 1)
  redis.call('HINCRBY', KEYS[5], ARGV[7], 1)
  for i, ttl in ipairs({ARGV[14], ARGV[15]}) do
    local bucket = KEYS[6 + i]
    redis.call('HINCRBY', bucket, 'attempts', 1)
    redis.call('HINCRBY', bucket, ARGV[12], 1)
    if ARGV[8] == '1' then redis.call('HINCRBY', bucket, 'ok', 1) end
    redis.call('PEXPIRE', bucket, tonumber(ttl))
  end
end

-- The circuit breaker: the endpoint's failing streak starts at its first
-- failure after a success; past HOOKFLEET_DISABLE_AFTER (or on 410 Gone)
-- the endpoint is disabled and its queued deliveries will be held.
local disabled = 0
if not counted then
  -- test sends never trip the breaker
elseif ARGV[8] == '1' then
  redis.call('HDEL', KEYS[5], 'failing_since')
else
  local now = tonumber(ARGV[4])
  local since = tonumber(redis.call('HGET', KEYS[5], 'failing_since') or '')
  if not since then
    since = now
    redis.call('HSET', KEYS[5], 'failing_since', now)
  end
  if (ARGV[10] == '1' or now - since >= tonumber(ARGV[9]))
      and redis.call('HGET', KEYS[6], 'active') == '1' then
    local reason = 'failing'
    if ARGV[10] == '1' then reason = 'gone' end
    redis.call('HSET', KEYS[6], 'active', '0', 'disabled_reason', reason, 'updated', now)
    disabled = 1
  end
end

local d = redis.call('HMGET', KEYS[2], 'claims', 'status', 'attempt_ids', 'attempts')
if d[1] ~= ARGV[2] or d[2] ~= 'in_flight' then
  return {0, entry, disabled}
end
local ids = entry
if d[3] and d[3] ~= '' then ids = d[3] .. ',' .. entry end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'status', ARGV[3], 'attempts', (tonumber(d[4]) or 0) + 1,
  'last_at', ARGV[4], 'last_code', ARGV[6], 'attempt_ids', ids,
  'recorded', ARGV[2] .. ':' .. disabled, 'next', '')
redis.call('SREM', KEYS[3], ARGV[1])
if counted then
  redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
  redis.call('HINCRBY', KEYS[7], ARGV[3], 1)
  redis.call('HINCRBY', KEYS[8], ARGV[3], 1)
end
if not counted then
  -- a test send leaves last success/failure alone
elseif ARGV[3] == 'delivered' then
  redis.call('HSET', KEYS[5], 'last_success_at', ARGV[4], 'last_success_code', ARGV[6])
else
  redis.call('HSET', KEYS[5], 'last_failure_at', ARGV[4], 'last_failure_code', ARGV[6])
end
return {1, entry, disabled}
