-- replay_chunk.lua: one step of a replay: queue again the next deliveries
-- of the window (the endpoint's log past the replay's cursor) whose state
-- the replay's filter allows, and move the cursor past them, in one atomic
-- step. A worker that dies between steps leaves the cursor where its last
-- step put it; the next holder goes on from there, so each delivery of the
-- window is looked at, and queued, once.
--
-- KEYS[1] replay hash      hf:{pN}:replay:<rid>
-- KEYS[2] replays zset     hf:{pN}:replays
-- KEYS[3] endpoint hash    hf:{pN}:endpoint:<eid>
-- KEYS[4] endpoint log     hf:{pN}:ep_dlv:<eid>
-- KEYS[5] endpoint ep_due  hf:{pN}:ep_due:<eid>
-- KEYS[6] ready zset       hf:{pN}:ready
-- KEYS[7] inflight zset    hf:{pN}:inflight
-- KEYS[8] queued counter   hf:{pN}:queued
-- KEYS[9] running replay   hf:{pN}:replay_running:<eid> (one per endpoint)
-- ARGV[1] partition key prefix  ARGV[2] replay id  ARGV[3] the holder's
-- token  ARGV[4] most log entries to look at  ARGV[5] lease (ms)
-- ARGV[6] wake channel  ARGV[7] partition  ARGV[8] endpoint id
--
-- Returns {code, scanned, queued}: code 1 when the replay has ended
-- (completed, or cancelled because its endpoint is gone), 0 when there is
-- more to do (the lease is renewed), -1 when the caller no longer holds it
-- (cancelled, or taken over after its lease expired): nothing written.
--
-- What is queued, as retry.lua queues one delivery: a `failed` (or, for
-- filter `all`, `delivered`) delivery not in flight becomes `pending` with
-- one more attempt allowed, due now in its endpoint's ep_due. Test sends
-- (state `max` 1, see record.lua) are left alone, and so is everything
-- while the endpoint is disabled (looked at, not queued).

local r = redis.call('HMGET', KEYS[1], 'status', 'worker', 'since', 'until', 'filter', 'cursor',
  'scanned', 'queued', 'tenant')
if r[1] ~= 'running' or r[2] ~= ARGV[3] then return {-1, 0, 0} end
local now = int(redis_now_ms())
local scanned, queued = tonumber(r[7] or '') or 0, tonumber(r[8] or '') or 0
local function finish(status)
  redis.call('HSET', KEYS[1], 'status', status, 'finished', now, 'heartbeat', now)
  redis.call('ZREM', KEYS[2], ARGV[2])
  if redis.call('GET', KEYS[9]) == ARGV[2] then redis.call('DEL', KEYS[9]) end
end
local e = redis.call('HMGET', KEYS[3], 'tenant', 'active')
if e[1] ~= r[9] then
  -- The endpoint is gone: nothing left to queue.
  finish('cancelled')
  return {1, scanned, queued}
end
local active = e[2] == '1'
local allowed = {failed = true}
if r[5] == 'all' then allowed.delivered = true end
local lower = '(' .. (r[6] or int(tonumber(r[3]) * 1000 - 1))
local upper = int(tonumber(r[4]) * 1000 + 999)
local chunk = tonumber(ARGV[4])
local entries = redis.call('ZRANGEBYSCORE', KEYS[4], lower, upper, 'WITHSCORES', 'LIMIT', '0', chunk)
local due = {}
for i = 1, #entries, 2 do
  local event_id = entries[i]
  scanned = scanned + 1
  local delivery_id = 'dlv_' .. string.sub(event_id, EVT_BODY) .. string.sub(ARGV[8], EP_BODY)
  local states, field = state_key(ARGV[1], delivery_id)
  local s = read_state(redis.call('HGET', states, field), field)
  if active and s and allowed[s.status] and s.max ~= '1'
    and not redis.call('ZSCORE', KEYS[7], delivery_id) then
    s.status = 'pending'
    s.max = int(s.attempts + 1)
    s.next = now
    redis.call('HSET', states, field, write_state(s, field))
    due[#due + 1] = now
    due[#due + 1] = event_id
    queued = queued + 1
  end
end
if #due > 0 then
  in_slices('ZADD', KEYS[5], due)
  redis.call('INCRBY', KEYS[8], int(#due / 2))
  redis.call('ZADD', KEYS[6], 'LT', now, ARGV[8])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
local fields = {'scanned', scanned, 'queued', queued, 'heartbeat', now}
if #entries > 0 then
  fields[#fields + 1] = 'cursor'
  fields[#fields + 1] = entries[#entries]
end
redis.call('HSET', KEYS[1], unpack(fields))
if #entries < 2 * chunk then
  finish('completed')
  return {1, scanned, queued}
end
redis.call('ZADD', KEYS[2], int(now + tonumber(ARGV[5])), ARGV[2])
return {0, scanned, queued}
