-- claim.lua: hand out up to N due deliveries of one partition under a lease.
--
-- KEYS[1] ready zset       hf:{pN}:ready
-- KEYS[2] inflight zset    hf:{pN}:inflight
-- KEYS[3] queued counter   hf:{pN}:queued
-- ARGV[1] partition key prefix  hf:{pN}:  ARGV[2] max deliveries to claim
-- ARGV[3] lease (ms)  ARGV[4] this partition's code (the two characters
--         that end the ids of events homed here: their records are here)
-- ARGV[5] max expired leases to reclaim  ARGV[6] initial delay (ms): the
--         server's retry schedule's first entry, for endpoints without a
--         `retry_schedule` of their own (whose first entry counts instead)
-- ARGV[7] retention (ms): a delivery older than that is dropped, not sent
--         (its event's bucket may linger a little longer)
-- ARGV[8] wake channel  ARGV[9] this partition's number
-- ARGV[10] the default concurrency cap (HOOKFLEET_MAX_IN_FLIGHT), for
--          endpoints without a `max_in_flight` of their own
-- ARGV[11] the most slots of this worker one tenant may hold
--          (HOOKFLEET_TENANT_SHARE of its concurrency)
-- ARGV[12..] pairs: a tenant holding slots of this worker, how many
--
-- Hand-off: publish.lua wakes the workers only when an endpoint becomes
-- due (not for every event to an endpoint already due), so a claim that
-- leaves due work behind (its batch was full) wakes them itself: another
-- worker with room takes the rest.
--
-- Time comes from Redis (TIME), not from the worker: every worker of the
-- fleet then agrees on what is due, on lease deadlines and on the rate
-- limit's theoretical arrival time. (Retry times are set by the worker that
-- made the attempt, from its own clock: keep hosts in sync with NTP.)
--
-- The partition's work is scheduled per endpoint: the ready set holds
-- each endpoint that has deliveries to hand out, scored by when its first
-- one is due (or by its next rate-limit slot). An endpoint's deliveries
-- wait in two places: first attempts in its ep_dlv past its `qhead` (the
-- score of the last one handed out), in creation order; later attempts in
-- its ep_due, by due time. A disabled endpoint simply leaves the ready
-- set, its deliveries held where they are; a deleted one is dropped from
-- it, and what it had waiting reads as cancelled.
--
-- Returns one flat array (a nested table per job costs Redis more to
-- answer than the values in it): next_due_ms or -1, endpoints deferred by
-- rate limits, lease deadline, endpoints parked at their concurrency
-- limit, endpoints skipped for their tenant's share, E, E endpoints, V,
-- V events, then the jobs to the end:
--   each endpoint the jobs go to once, as 9 values: endpoint id, tenant
--   id, url, secret, headers json, timeout ms, previous secret, previous
--   secret valid until (ms), its own retry schedule (ms, comma-separated)
--   or '';
--   each event once, as 2 values: event id, record (stored_event.rs), or
--   '' when the event lives in another partition (the worker reads it
--   there);
--   each job as 5 values: delivery id, endpoint (1-based position
--   above), event (position above), attempts so far, max attempts or -1.
-- The lease deadline is also every job's lease token: record.lua changes a
-- delivery only while its inflight score still equals it.
--
-- In one atomic step it:
--  1. puts deliveries whose lease expired (their worker died) back in their
--     endpoints' ep_due, due now;
--  2. visits the ready endpoints whose first delivery is due, earliest
--     first: drops a deleted one, takes a disabled one out of the set,
--     and hands out the others' due deliveries (later attempts first, then
--     first attempts), as many as the endpoint's rate limit allows now
--     (GCRA, fleet-wide because the state lives here), sharing the claim
--     fairly among them; then scores each endpoint anew by its next due
--     delivery (or its next rate-limit slot), or takes it out when it has
--     none.
--
-- Concurrency, fleet-wide. An endpoint's hash counts its attempts in
-- flight (`busy`, +1 per lease here, -1 when record.lua ends one or step 1
-- takes an expired lease back), so no claim hands out more than the
-- endpoint's limit: `max_in_flight` (or ARGV[10]), lowered by `window`
-- while its attempts time out (record.lua halves it on a timeout and adds
-- one per answer, as TCP's congestion window does). An endpoint at its
-- limit with due work is *parked*: scored a lease ahead (a safety net) and
-- marked `parked`, and record.lua puts it back to now as soon as one of
-- its attempts ends. A slow or hanging receiver thus holds at most its
-- limit of the fleet's attempt slots, and is not visited by every claim
-- meanwhile. Should `busy` ever be wrong (it is only written by scripts,
-- so only a lost write could make it so), a count untouched by any claim
-- for two leases is stale by construction (every lease it counted has
-- ended or expired by then) and starts again from zero.
--
-- Tenant share. The worker says how many of its slots each tenant holds;
-- a claim hands a tenant no more than its share's room, and skips the
-- endpoints of a tenant with none, scoring them a few ms ahead (not now:
-- a claim that found only those would wake the fleet, this worker
-- included, over and over), so another worker with room takes them and
-- this worker's other tenants are served.
--
-- Ordered endpoints (`ordering` = fifo). At most one attempt in flight,
-- fleet-wide (their limit is 1 whatever `max_in_flight` says), and the
-- first attempts leave in their log order, as for every endpoint. What
-- makes the order hold is that a FIFO endpoint hands out no first attempt
-- while its ep_due holds anything: a delivery waiting for its retry (or
-- put back after its worker died, or queued again by a manual retry or a
-- replay) goes before everything behind it, and the endpoint is scored by
-- that delivery's due time alone until it has ended. The delivery handed
-- out is remembered in `fifo_at` (the API shows it as the head of the
-- line while it is in flight).
--
-- Round robin. An endpoint that got deliveries and still has some due
-- goes to the back of the due line (scored now, not by its oldest due
-- delivery), so when more endpoints are due than one claim visits, the
-- next claim starts with the others instead of the same deep backlog.

local prefix = ARGV[1]
local now = redis_now_ms()
local now_s = int(now)
local max_jobs = tonumber(ARGV[2])
local deadline = int(now + tonumber(ARGV[3]))
local here = ARGV[4]
local delay = tonumber(ARGV[6]) or 0
-- Log scores (creation, µs) at or below this are past retention.
local expired_us = (now - (tonumber(ARGV[7]) or 0)) * 1000
-- A first attempt is due in the millisecond its score falls in, plus the
-- delay: the ready set's scores are computed the same way.
local function upper_us_of(first_delay) return int((now - first_delay + 1) * 1000 - 1) end
local queued_delta = 0
local lease_ms = tonumber(ARGV[3])
local default_cap = tonumber(ARGV[10]) or 32
local SHARE_DELAY = 25
local share = tonumber(ARGV[11]) or max_jobs
local tenant_room = {}
for i = 12, #ARGV - 1, 2 do tenant_room[ARGV[i]] = share - tonumber(ARGV[i + 1]) end
local function room_of(tenant)
  local room = tenant_room[tenant]
  if room == nil then room = share end
  return room
end
local skipped = 0

-- 1. Expired leases back to their endpoints, due now.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_s, 'LIMIT', '0', ARGV[5])
if #expired > 0 then
  local released = {}
  for _, delivery_id in ipairs(expired) do
    local endpoint_id = 'ep_' .. string.sub(delivery_id, DLV_ENDPOINT)
    redis.call('ZADD', prefix .. 'ep_due:' .. endpoint_id, now_s,
      'evt_' .. string.sub(delivery_id, DLV_EVENT, DLV_EVENT_END))
    redis.call('ZADD', KEYS[1], 'LT', now_s, endpoint_id)
    released[endpoint_id] = (released[endpoint_id] or 0) + 1
  end
  -- Their slots are free again (the endpoint back to now above is also
  -- what unparks it).
  for endpoint_id, n in pairs(released) do
    local endpoint_key = prefix .. 'endpoint:' .. endpoint_id
    local busy = redis.call('HGET', endpoint_key, 'busy')
    if busy then
      redis.call('HSET', endpoint_key, 'busy', int(math.max(0, tonumber(busy) - n)))
    end
  end
  in_slices('ZREM', KEYS[2], expired)
  queued_delta = queued_delta + #expired
end

-- 2. The endpoints with something due.
local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', '0', ARGV[2])
local visits = {}
local deferred = 0
for _, endpoint_id in ipairs(ready) do
  local e = redis.call('HMGET', prefix .. 'endpoint:' .. endpoint_id,
    'tenant', 'active', 'url', 'secret', 'headers', 'timeout_ms', 'rate_limit',
    'old_secret', 'old_secret_until', 'qhead', 'max_in_flight', 'busy', 'window', 'busy_at', 'parked', 'paused',
    'ordering', 'retry_schedule')
  if not e[1] then
    -- Deleted (delete_endpoint.lua counted and dropped what waited then;
    -- what came back since, from expired leases, goes now).
    local due_key = prefix .. 'ep_due:' .. endpoint_id
    queued_delta = queued_delta - redis.call('ZCARD', due_key)
    redis.call('DEL', due_key)
    redis.call('ZREM', KEYS[1], endpoint_id)
  elseif e[2] ~= '1' or e[16] == '1' then
    -- Disabled or paused: held where they are until it is enabled or
    -- resumed again (update_endpoint.lua puts it back).
    redis.call('ZREM', KEYS[1], endpoint_id)
  elseif room_of(e[1]) <= 0 then
    -- Its tenant holds its share of this worker: for another worker.
    redis.call('ZADD', KEYS[1], 'GT', int(now + SHARE_DELAY), endpoint_id)
    skipped = skipped + 1
  else
    local visit = {id = endpoint_id, e = e, head = e[10], taken = 0, full = false,
      fifo = e[17] == 'fifo',
      delay = tonumber(string.match(e[18] or '', '^(%d+)') or '') or delay}
    local limit = tonumber(e[11] or '') or default_cap
    local window = tonumber(e[13] or '')
    if window and window < limit then limit = math.max(1, window) end
    if visit.fifo then limit = 1 end
    local busy = tonumber(e[12] or '') or 0
    if busy > 0 and now - (tonumber(e[14] or '') or 0) > 2 * lease_ms then
      busy = 0
      visit.reset = true
    end
    visit.busy = busy
    visit.room = limit - busy
    local rate = tonumber(e[7] or '')
    if rate and rate > 0 then
      -- GCRA, fleet-wide: one delivery per 1/rate seconds. The state is
      -- "<tat> ..." (the theoretical arrival time; earlier versions kept
      -- more values after it).
      local emission = 1000 / rate
      local stored = redis.call('GET', prefix .. 'rate:' .. endpoint_id) or ''
      visit.rate = {tat = tonumber(string.match(stored, '^(%S+)') or '') or 0,
        emission = emission,
        -- A claim is a few ms late now and then (the worker wakes at the
        -- due time, not before): that much earliness is forgiven, so a
        -- delivery given a slot is sent in it instead of being pushed back.
        tolerance = math.min(emission / 4, 10)}
    end
    visits[#visits + 1] = visit
  end
end

-- The endpoints and events the jobs refer to, each listed once.
local used = {}
local used_at = {}
local event_list = {}
local event_at = {}
local jobs = {}
local leased = {}

-- How many of `want` deliveries the endpoint's rate limit allows now.
local function allowed(visit, want)
  local r = visit.rate
  if not r then return want end
  local n, tat = 0, r.tat
  while n < want and tat - r.tolerance <= now do
    tat = math.max(tat, now) + r.emission
    n = n + 1
  end
  return n
end

-- Leases one delivery of the visited endpoint (event `event_id`); false
-- when its event has expired or it has ended (it is dropped then).
-- The events hash of the last bucket read (a claim's events mostly share
-- one: the key is built once per bucket, not per event).
local events_bucket, events_key = nil, nil
local function events_key_of(event_id)
  local bucket = string.sub(event_id, EVT_BODY, EVT_BUCKET_END)
  if bucket ~= events_bucket then
    events_bucket, events_key = bucket, prefix .. 'events:' .. bucket
  end
  return events_key
end
-- The records of the events in `list` (every `step`-th value from the
-- first) that this call has not read yet and that are stored in this
-- partition, with one HMGET per events hash: event id -> record, or
-- false when it has expired. A redis.call per event costs more than the
-- read itself.
local function fetch_events(list, step)
  local wanted, keys = {}, {}
  for i = 1, #list, step do
    local event_id = list[i]
    if not event_at[event_id] and string.sub(event_id, -ID_PARTITION) == here then
      read_later(wanted, keys, events_key_of(event_id), event_id)
    end
  end
  local fetched = {}
  for _, key in ipairs(keys) do
    local ids = wanted[key]
    local records = read_in_slices('HMGET', key, ids)
    for k, event_id in ipairs(ids) do fetched[event_id] = records[k] end
  end
  return fetched
end
-- (`fetched`, when given, holds records fetch_events read.)
local function lease(visit, event_id, later, fetched)
  if not visit.body then visit.body = string.sub(visit.id, EP_BODY) end
  local delivery_id = 'dlv_' .. string.sub(event_id, EVT_BODY) .. visit.body
  local at = event_at[event_id]
  if not at then
    local record = ''
    if string.sub(event_id, -ID_PARTITION) == here then
      record = fetched and fetched[event_id]
      if record == nil then record = redis.call('HGET', events_key_of(event_id), event_id) end
      if not record then return false end
    end
    event_list[#event_list + 1] = event_id
    event_list[#event_list + 1] = record
    at = #event_list / 2
    event_at[event_id] = at
  end
  local attempts, max = 0, -1
  if later then
    local created = redis.call('ZSCORE', prefix .. 'ep_dlv:' .. visit.id, event_id)
    if not created or tonumber(created) <= expired_us then return false end
    local states, field = state_key(prefix, delivery_id)
    local s = read_state(redis.call('HGET', states, field))
    if s then
      -- Already ended: nothing to hand out (a safety net; nothing queues
      -- an ended delivery without making it pending first).
      if s.status == 'delivered' or s.status == 'failed' then return false end
      attempts = s.attempts
      max = tonumber(s.max) or -1
    end
  end
  local position = used_at[visit.id]
  if not position then
    used[#used + 1] = visit
    position = #used
    used_at[visit.id] = position
  end
  leased[#leased + 1] = deadline
  leased[#leased + 1] = delivery_id
  jobs[#jobs + 1] = delivery_id
  jobs[#jobs + 1] = position
  jobs[#jobs + 1] = at
  jobs[#jobs + 1] = attempts
  jobs[#jobs + 1] = max
  if visit.fifo then visit.fifo_at = event_id end
  return true
end

-- Hands out up to `want` due deliveries of one endpoint; returns how many.
local function take(visit, want)
  local room = visit.room - visit.taken
  if room <= 0 then
    visit.capped = true
    visit.full = false
    return 0
  end
  if want > room then want = room end
  local share_room = room_of(visit.e[1])
  if want > share_room then want = share_room end
  if want <= 0 then return 0 end
  want = allowed(visit, want)
  if want == 0 then
    if visit.rate and visit.taken == 0 then deferred = deferred + 1 end
    return 0
  end
  local got = 0
  -- Later attempts first: they have waited longest.
  local due_key = prefix .. 'ep_due:' .. visit.id
  local later = redis.call('ZRANGEBYSCORE', due_key, '-inf', now_s, 'LIMIT', '0', int(want))
  if #later > 0 then
    for _, event_id in ipairs(later) do
      if lease(visit, event_id, true) then got = got + 1 end
      queued_delta = queued_delta - 1
    end
    in_slices('ZREM', due_key, later)
  end
  -- (An ordered endpoint's first attempts wait while any later attempt
  -- does, due or not: see the header.)
  if got < want and (not visit.fifo or redis.call('ZCARD', due_key) == 0) then
    -- First attempts past retention leave the queue unsent.
    if not visit.head or tonumber(visit.head) < expired_us then
      local lower = '-inf'
      if visit.head then lower = '(' .. visit.head end
      local stale = redis.call('ZCOUNT', prefix .. 'ep_dlv:' .. visit.id, lower, int(expired_us))
      if stale > 0 then
        queued_delta = queued_delta - stale
        visit.head = int(expired_us)
        visit.moved = true
      end
    end
    local lower = '-inf'
    if visit.head then lower = '(' .. visit.head end
    local first = redis.call('ZRANGEBYSCORE', prefix .. 'ep_dlv:' .. visit.id, lower, upper_us_of(visit.delay),
      'WITHSCORES', 'LIMIT', '0', int(want - got))
    local fetched = fetch_events(first, 2)
    for i = 1, #first, 2 do
      if lease(visit, first[i], false, fetched) then got = got + 1 end
      visit.head = first[i + 1]
      visit.moved = true
      queued_delta = queued_delta - 1
    end
  end
  if visit.rate then
    for _ = 1, got do
      visit.rate.tat = math.max(visit.rate.tat, now) + visit.rate.emission
    end
  end
  visit.taken = visit.taken + got
  tenant_room[visit.e[1]] = room_of(visit.e[1]) - got
  visit.full = got >= want
  if visit.taken >= visit.room then
    visit.capped = true
    visit.full = false
  end
  return got
end

-- A fair share each first, then what is left to those that had more.
local budget = max_jobs
if #visits > 0 then
  local share = math.max(1, math.ceil(max_jobs / #visits))
  for _, visit in ipairs(visits) do
    if budget <= 0 then break end
    budget = budget - take(visit, math.min(share, budget))
  end
  for _, visit in ipairs(visits) do
    if budget <= 0 then break end
    if visit.full then budget = budget - take(visit, budget) end
  end
end

-- Every visited endpoint scored anew: by its next due delivery, not
-- before its next rate-limit slot; out of the set when it has none.
local capped = 0
for _, visit in ipairs(visits) do
  local endpoint_key = prefix .. 'endpoint:' .. visit.id
  -- One HSET for what changed (each redis.call costs more than its work).
  local fields = {}
  if visit.moved then
    fields[#fields + 1] = 'qhead'
    fields[#fields + 1] = visit.head
  end
  if visit.taken > 0 or visit.reset then
    fields[#fields + 1] = 'busy'
    fields[#fields + 1] = int(visit.busy + visit.taken)
    fields[#fields + 1] = 'busy_at'
    fields[#fields + 1] = now_s
  end
  if visit.fifo_at then
    fields[#fields + 1] = 'fifo_at'
    fields[#fields + 1] = visit.fifo_at
  end
  if #fields > 0 then redis.call('HSET', endpoint_key, unpack(fields)) end
  local r = visit.rate
  if r and visit.taken > 0 then
    -- Kept while the slot it describes lies ahead.
    redis.call('SET', prefix .. 'rate:' .. visit.id, string.format('%.3f', r.tat),
      'PX', int(math.ceil(math.max(r.tat - now, 0) + r.emission) + 1000))
  end
  local next_due = nil
  local later = redis.call('ZRANGE', prefix .. 'ep_due:' .. visit.id, 0, 0, 'WITHSCORES')
  if later[2] then next_due = tonumber(later[2]) end
  local lower = '-inf'
  if visit.head then lower = '(' .. visit.head end
  -- (An ordered endpoint with a later attempt waiting is due when that is.)
  if not (visit.fifo and next_due) then
    local first = redis.call('ZRANGEBYSCORE', prefix .. 'ep_dlv:' .. visit.id, lower, '+inf',
      'WITHSCORES', 'LIMIT', '0', '1')
    if first[2] then
      local due = math.floor(tonumber(first[2]) / 1000) + visit.delay
      if not next_due or due < next_due then next_due = due end
    end
  end
  local parked = false
  if not next_due then
    redis.call('ZREM', KEYS[1], visit.id)
  else
    if r then next_due = math.max(next_due, math.ceil(r.tat - r.tolerance)) end
    if next_due <= now and visit.capped then
      -- At its limit with work due: parked until one of its attempts ends.
      parked = true
      next_due = now + lease_ms
      if visit.e[15] ~= '1' then redis.call('HSET', endpoint_key, 'parked', '1') end
      capped = capped + 1
    elseif next_due <= now and visit.taken > 0 then
      -- Served: to the back of the due line.
      next_due = now
    end
    redis.call('ZADD', KEYS[1], int(next_due), visit.id)
  end
  if visit.e[15] == '1' and not parked then
    redis.call('HDEL', endpoint_key, 'parked')
  end
end

in_slices('ZADD', KEYS[2], leased)
if queued_delta ~= 0 then redis.call('INCRBY', KEYS[3], int(queued_delta)) end

local next_due = -1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then
  next_due = tonumber(first[2])
  if next_due <= now and ARGV[8] then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
end
local first_lease = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first_lease[2] and (next_due < 0 or tonumber(first_lease[2]) < next_due) then
  next_due = tonumber(first_lease[2])
end
local result = {next_due, deferred, deadline, capped, skipped, #used}
for _, visit in ipairs(used) do
  local e = visit.e
  local n = #result
  result[n + 1], result[n + 2], result[n + 3] = visit.id, e[1], e[3] or ''
  result[n + 4], result[n + 5], result[n + 6] = e[4] or '', e[5] or '', e[6] or ''
  result[n + 7], result[n + 8], result[n + 9] = e[8] or '', e[9] or '', e[18] or ''
end
result[#result + 1] = #event_list / 2
for _, value in ipairs(event_list) do result[#result + 1] = value end
for _, value in ipairs(jobs) do result[#result + 1] = value end
return result
