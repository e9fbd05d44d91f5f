-- claim.lua: hand out up to N due deliveries of one partition under a lease.
--
-- KEYS[1] due zset       hf:{pN}:due
-- KEYS[2] inflight zset  hf:{pN}:inflight
-- ARGV[1] partition key prefix  hf:{pN}:
-- ARGV[2] (unused; kept for argument positions)  ARGV[3] max deliveries to claim
-- ARGV[4] lease (ms)  ARGV[5] this partition's number
-- ARGV[6] max expired leases to reclaim
--
-- Time comes from Redis (TIME), not from the worker: every worker of the
-- fleet then agrees on what is due, on lease deadlines and on the rate
-- limit's theoretical arrival time. (Retry times are set by the worker that
-- made the attempt, from its own clock: keep hosts in sync with NTP.)
--
-- Returns {next_due_ms or -1, deferred by rate limits, E, endpoint x E,
-- job, job, ...}: each endpoint the jobs go to once (a claim's jobs mostly
-- share a few endpoints, so their settings are sent and read once), as
-- {endpoint id, tenant id, url, secret, headers json, timeout ms,
--  previous secret, previous secret valid until (ms)};
-- and each job as
-- {delivery id, endpoint id, event id, attempts so far, lease token,
--  body or '', event type,
--  max attempts or '' (a manual retry or a test send is one attempt),
--  '1' for a test send}.
--
-- In one atomic step it:
--  1. puts deliveries whose lease expired (their worker died) back in due;
--  2. for each due delivery: cancels it if its endpoint is gone, holds it
--     if the endpoint is disabled, defers it to the next free slot of the
--     endpoint's rate limit (GCRA, fleet-wide because the state lives here),
--     or moves it to inflight with lease deadline now + lease.
-- The lease token (a per-delivery claim counter) lets record.lua refuse
-- a worker whose lease was taken over.

local prefix = ARGV[1]
local now = redis_now_ms()
local now_s = int(now)
local max_jobs = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local deadline = int(now + lease)
local partition = ARGV[5]

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_s, 'LIMIT', '0', ARGV[6])
for _, delivery_id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], delivery_id)
  local delivery = prefix .. 'delivery:' .. delivery_id
  if redis.call('HGET', delivery, 'status') == 'in_flight' then
    redis.call('HSET', delivery, 'status', 'pending', 'next', now_s)
    redis.call('ZADD', KEYS[1], now_s, delivery_id)
  end
end

local jobs = {}
local deferred = {}
-- Gathered writes: one variadic command each at the end.
local leave_due = {}
local leased = {}
-- Read once per call: endpoints, event bodies, rate-limit state.
local endpoints = {}
-- The endpoints jobs go to, in order of their first job.
local used = {}
local bodies = {}
local rates = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', '0', ARGV[3])
for _, delivery_id in ipairs(due) do
  local delivery = prefix .. 'delivery:' .. delivery_id
  local d
  if string.byte(delivery_id, 1) ~= 100 then
    -- Not a delivery id ("dlv_…") but a marker left by update_endpoint.lua
    -- or delete_endpoint.lua: release (or cancel) the next STEP of an
    -- endpoint's held (or open) deliveries; the marker stays while any are
    -- left, so the next claim goes on.
    local kind, endpoint_id = string.match(delivery_id, '^(%a+):(.+)$')
    local left = 0
    if kind == 'release' then
      if redis.call('HGET', prefix .. 'endpoint:' .. endpoint_id, 'active') == '1' then
        local _
        _, left = release_held(prefix .. 'ep_held:' .. endpoint_id, KEYS[1], now_s)
      end
    elseif kind == 'cancel' then
      local open_key = prefix .. 'ep_open:' .. endpoint_id
      local _
      _, left = cancel_open(prefix, open_key, KEYS[1], KEYS[2], now_s)
      if left == 0 then
        redis.call('DEL', open_key, prefix .. 'ep_held:' .. endpoint_id)
      end
    end
    if left == 0 then
      leave_due[#leave_due + 1] = delivery_id
    end
  else
    d = redis.call('HMGET', delivery, 'endpoint', 'event', 'attempts', 'evp', 'tenant', 'type',
      'max_attempts', 'test', 'claims', 'status')
  end
  local status = d and d[10]
  if not d then
    -- (A marker, handled above.)
  elseif status == 'delivered' or status == 'failed' or status == 'cancelled'
      or status == 'in_flight' then
    -- Already ended, or leased: nothing to hand out. (A safety net: a
    -- delivery should not be in due then; retry.lua takes a retried one
    -- out of a stepped release's held set.)
    leave_due[#leave_due + 1] = delivery_id
  elseif not d[1] then
    -- Expired by retention: nothing left to deliver.
    leave_due[#leave_due + 1] = delivery_id
  else
    local endpoint_id = d[1]
    local endpoint = endpoints[endpoint_id]
    if not endpoint then
      endpoint = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id,
        'tenant', 'active', 'url', 'secret', 'headers', 'timeout_ms', 'rate_limit',
        'old_secret', 'old_secret_until')
      endpoints[endpoint_id] = endpoint
    end
    if endpoint[1] ~= d[5] then
      leave_due[#leave_due + 1] = delivery_id
      redis.call('HSET', delivery, 'status', 'cancelled', 'next', '')
      redis.call('SREM', prefix .. 'ep_open:' .. endpoint_id, delivery_id)
    elseif endpoint[2] ~= '1' then
      leave_due[#leave_due + 1] = delivery_id
      redis.call('ZADD', prefix .. 'ep_held:' .. endpoint_id, now_s, delivery_id)
    else
      local allowed = true
      local rate = tonumber(endpoint[7] or '')
      if rate and rate > 0 then
        -- GCRA, fleet-wide: one delivery per 1/rate seconds. The state is
        -- "<tat> <horizon> <interval>": the theoretical arrival time, the
        -- slot after the last one given to a deferred delivery, and the
        -- interval those slots were spaced by (a changed rate starts the
        -- horizon afresh).
        local emission = 1000 / rate
        local state = rates[endpoint_id]
        if not state then
          local stored = redis.call('GET', prefix .. 'rate:' .. endpoint_id) or ''
          local values = {}
          for value in string.gmatch(stored, '%S+') do values[#values + 1] = tonumber(value) end
          local horizon = values[2] or 0
          if values[3] and math.abs(values[3] - emission) > 0.001 then horizon = 0 end
          state = {tat = values[1] or 0, horizon = horizon, emission = emission, dirty = false}
          rates[endpoint_id] = state
        end
        -- A claim is a few ms late now and then (the worker wakes at the
        -- due time, not before): that much earliness is forgiven, so a
        -- delivery given a slot is sent in it instead of being pushed back.
        local tolerance = math.min(emission / 4, 10)
        if state.tat - tolerance > now then
          -- Over the limit: give it the next free slot. Slots are handed out
          -- past those of earlier deferrals (the horizon), so a backlog is
          -- spread over successive slots once, not rescheduled on every
          -- claim until its turn comes.
          local slot = math.max(state.tat, state.horizon)
          state.horizon = slot + emission
          state.dirty = true
          deferred[endpoint_id] = (deferred[endpoint_id] or 0) + 1
          local allowed_at = int(math.ceil(slot))
          redis.call('ZADD', KEYS[1], allowed_at, delivery_id)
          redis.call('HSET', delivery, 'next', allowed_at)
          allowed = false
        else
          state.tat = math.max(state.tat, now) + emission
          state.dirty = true
        end
      end
      if allowed then
        leave_due[#leave_due + 1] = delivery_id
        leased[#leased + 1] = deadline
        leased[#leased + 1] = delivery_id
        local token = int((tonumber(d[9]) or 0) + 1)
        redis.call('HSET', delivery, 'claims', token, 'status', 'in_flight')
        local body = ''
        if d[4] == partition then
          body = bodies[d[2]]
          if not body then
            -- (Events stored before the body had its own key keep it in
            -- their hash.)
            body = redis.call('GET', prefix .. 'event_body:' .. d[2])
              or redis.call('HGET', prefix .. 'event:' .. d[2], 'body') or ''
            bodies[d[2]] = body
          end
        end
        if not endpoint.used then
          endpoint.used = true
          used[#used + 1] = endpoint_id
        end
        jobs[#jobs + 1] = {delivery_id, endpoint_id, d[2], d[3] or '0', token, body,
          d[6] or '', d[7] or '', d[8] or ''}
      end
    end
  end
end
in_slices('ZREM', KEYS[1], leave_due)
in_slices('ZADD', KEYS[2], leased)
for endpoint_id, state in pairs(rates) do
  if state.dirty then
    -- Kept while a slot it describes lies ahead.
    local last = math.max(state.tat, state.horizon)
    redis.call('SET', prefix .. 'rate:' .. endpoint_id,
      string.format('%.3f %.3f %.3f', state.tat, state.horizon, state.emission),
      'PX', int(math.ceil(math.max(last - now, 0) + state.emission) + 1000))
  end
end

local next_due = -1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then next_due = tonumber(first[2]) end
local first_lease = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first_lease[2] and (next_due < 0 or tonumber(first_lease[2]) < next_due) then
  next_due = tonumber(first_lease[2])
end
local deferred_count = 0
for _, n in pairs(deferred) do deferred_count = deferred_count + n end
local result = {next_due, deferred_count, #used}
for _, endpoint_id in ipairs(used) do
  local e = endpoints[endpoint_id]
  result[#result + 1] = {endpoint_id, e[1], e[3] or '', e[4] or '', e[5] or '', e[6] or '',
    e[8] or '', e[9] or ''}
end
for _, job in ipairs(jobs) do result[#result + 1] = job end
return result
