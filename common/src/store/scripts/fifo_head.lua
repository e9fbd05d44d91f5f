-- fifo_head.lua: the delivery at the head of an ordered (FIFO) endpoint's
-- line, read-only (see claim.lua for how the line moves).
--
-- KEYS[1] endpoint hash  hf:{pN}:endpoint:<eid>
-- KEYS[2] endpoint ep_due hf:{pN}:ep_due:<eid>
-- KEYS[3] endpoint log   hf:{pN}:ep_dlv:<eid>
-- KEYS[4] inflight zset  hf:{pN}:inflight
-- ARGV[1] partition key prefix  ARGV[2] endpoint id
--
-- The head is, in this order: the delivery claim.lua last handed out
-- (`fifo_at`) while it is still in flight; else the first waiting in
-- ep_due (a retry, or one put back); else the first of the log past qhead
-- (not attempted yet). Returns {} when nothing waits, else {event id,
-- status (in_flight, scheduled or pending), when it entered the log (µs),
-- next attempt (ms, or ''), attempts so far}.

local h = redis.call('HMGET', KEYS[1], 'fifo_at', 'qhead')
local function delivery_of(event_id)
  return 'dlv_' .. string.sub(event_id, EVT_BODY) .. string.sub(ARGV[2], EP_BODY)
end
local function attempts_of(event_id)
  local states, field = state_key(ARGV[1], delivery_of(event_id))
  local s = read_state(redis.call('HGET', states, field))
  return (s and s.attempts) or 0
end
local function answer(event_id, status, next_ms)
  local created = redis.call('ZSCORE', KEYS[3], event_id)
  if not created then return nil end
  return {event_id, status, created, next_ms, attempts_of(event_id)}
end

if h[1] and redis.call('ZSCORE', KEYS[4], delivery_of(h[1])) then
  local found = answer(h[1], 'in_flight', '')
  if found then return found end
end
local due = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if due[1] then
  local found = answer(due[1], 'scheduled', due[2])
  if found then return found end
end
local lower = '-inf'
if h[2] then lower = '(' .. h[2] end
local first = redis.call('ZRANGEBYSCORE', KEYS[3], lower, '+inf', 'LIMIT', '0', '1')
if first[1] then
  return answer(first[1], 'pending', '') or {}
end
return {}
