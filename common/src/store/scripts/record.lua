-- record.lua: record a batch of attempts of one partition, and move each
-- delivery on: delivered, failed, or scheduled for its next attempt.
--
-- KEYS[1] inflight zset   hf:{pN}:inflight
-- KEYS[2] ready zset      hf:{pN}:ready
-- KEYS[3] notices zset    hf:{pN}:notices (operational events to publish)
-- KEYS[4] queued counter  hf:{pN}:queued
-- KEYS[5] ordered endpoints held by a retry  hf:{pN}:fifo_heads
-- ARGV[1] partition key prefix  hf:{pN}:
-- ARGV[2] stream MAXLEN (approximate)
-- ARGV[3] retention cut-off (ms): older attempt-log entries and endpoint
--         delivery-index entries go
-- ARGV[4] circuit breaker: disable an endpoint after failing without a
--         success for this long (ms)
-- ARGV[5] 5-minute bucket TTL (ms)   ARGV[6] hourly bucket TTL (ms)
-- ARGV[7] the attempt-log entry's field name (`a`, model::attempt_field::COMPACT)
-- ARGV[8] wake channel  ARGV[9] this partition's number
-- ARGV[10] the default concurrency cap (HOOKFLEET_MAX_IN_FLIGHT)
-- ARGV[11] the test-send channel: each test send's delivery id is
--          published there once its attempt moved it (API processes
--          waiting for it listen there instead of polling)
-- then one group of STRIDE values per attempt (STRIDE is set before this
-- file by store/scripts.rs, from store::record::STRIDE):
--   delivery id, endpoint id, lease token (the lease deadline claim.lua
--   answered),
--   outcome ('delivered', 'failed' or 'retry'), next attempt (ms, or ''),
--   attempt time (ms), response status ('' when there was none),
--   counter field of the attempt's class (e.g. attempts_2xx),
--   '1' if it succeeded (2xx), '1' to disable the endpoint now (410 Gone),
--   '1' for a test send (logged, outside statistics and circuit breaker),
--   latency histogram field (lat_<bin>), 5-minute bucket start,
--   hourly bucket start,
--   the attempt-log entry (the attempt's values packed as one JSON array),
--   the notice: '' when the attempt may not cause operational events (it
--   succeeded, or it is a test send, or of an operational event itself),
--   else a JSON object the worker publishes them from,
--   when the delivery's states:<bucket> hash may expire (epoch ms: the
--   bucket's end plus retention),
--   '1' when the attempt timed out (no answer within its timeout),
--   the attempt time as the state stores it (ms after the event's
--   creation; '' when the delivery id does not tell), the lease token as
--   the state stores it (ms after the attempt time; '' when unknown): the
--   worker counts both, which would cost a number parsed and formatted
--   here per attempt.
--
-- Concurrency (see claim.lua): each attempt whose lease this call ends
-- frees one of its endpoint's `busy` slots, and an endpoint claim.lua
-- parked at its limit goes back to the ready set at once (with a wake-up).
-- The endpoint's `window` moves as TCP's congestion window does: halved
-- (down to 1) by a timeout, one more for an answer of any status, up to
-- its limit, where it is dropped (absent means the limit). Connection
-- errors leave it alone: they hold no slot for long.
--
-- Ordered endpoints (`ordering` = fifo, see claim.lua): once one of their
-- attempts is recorded, KEYS[5] lists the endpoint while a delivery waits
-- in its ep_due (the head of its line, holding the rest), scored by when
-- that delivery was created (ms), and leaves it when none does: the
-- `hookfleet_fifo_head_age_seconds` gauge reads the oldest.
--
-- A delivery's state records its last answer's status code, or `t` when
-- the attempt timed out and `e` when it got no answer otherwise (a
-- connection error), for the delivery log's `response` filter. An event
-- whose delivery ends failed (not a test send) joins its tenant's
-- tfailed:<tid> index in this partition (scored 0: ordered by id), which
-- loses the ids older than ARGV[3] once per tenant and call.
--
-- Returns four values per attempt and then its notices, in order: held,
-- attempt entry id, disabled, the number of notices, then each notice
-- (one flat array: a nested table per attempt costs Redis more to answer
-- than the values in it). held is 0 when the lease was lost (another worker
-- reclaimed the delivery, or it was cancelled): the attempt is still
-- logged, because it happened, but the state is left alone. disabled is 1
-- when this attempt tripped the circuit breaker. The notices are the members
-- this attempt added to KEYS[3], written in the same step as the state
-- change they report, so none is lost if the worker dies before
-- publishing them (another worker publishes what is left):
--   'endpoint.disabled <disabled at> <failing since> <reason> <notice>'
--     when the attempt tripped the breaker;
--   'message.attempt.exhausted <notice>' when it ended the delivery failed.
--
-- Every attempt is handled as if recorded on its own, in order; only the
-- reads and writes are gathered: the deliveries' states are read with one
-- HMGET and written with one HSET per states hash, their leases read with
-- one ZMSCORE, counters and stats buckets move once per endpoint and field
-- (HINCRBY by the batch's sum), streams and delivery logs are trimmed once
-- per endpoint, and the lease set's changes are one variadic command. A
-- repeat of a call whose reply was lost gets the same answers
-- and records nothing twice (each delivery's state remembers `recorded` =
-- token:disabled). The delivery's state (state.lua) is written here for
-- its first time when its first attempt is recorded; a retry goes to the
-- endpoint's ep_due, and the endpoint to the ready set by then.

local prefix = ARGV[1]
local maxlen = ARGV[2]
local disable_after = tonumber(ARGV[4])
local fine_ttl = ARGV[5]
local coarse_ttl = ARGV[6]
local entry_field = ARGV[7]
local default_cap = tonumber(ARGV[10]) or 32
local first = 12
local B32 = '0123456789abcdefghjkmnpqrstvwxyz'
-- `ids::time_prefix` of an event id created at `ms`.
local function event_prefix(ms)
  local chars = {}
  ms = math.floor(ms)
  for i = 10, 1, -1 do
    local v = ms % 32
    chars[i] = string.sub(B32, v + 1, v + 1)
    ms = math.floor(ms / 32)
  end
  return 'evt_' .. table.concat(chars)
end
local failed_events = {}

-- What this call knows and will write per endpoint, read at first use.
local endpoints = {}
local order = {}
local function endpoint_of(eid)
  local e = endpoints[eid]
  if not e then
    local h = redis.call('HMGET', prefix .. 'endpoint:' .. eid, 'tenant', 'active', 'qhead',
      'busy', 'window', 'max_in_flight', 'parked', 'ordering')
    e = {exists = h[1] ~= false, active = h[2], qhead = h[3], stats = {}, buckets = {},
      bucket_ttl = {}, requeue = nil, next_due = nil, logged = false, since_known = false,
      since = nil, since_dirty = false, busy = tonumber(h[4] or '') or 0,
      window = tonumber(h[5] or ''), cap = tonumber(h[6] or '') or default_cap,
      parked = h[7] == '1', released = 0, window_dirty = false, fifo = h[8] == 'fifo',
      tenant = h[1], id = eid, attempts_key = prefix .. 'attempts:' .. eid,
      b5_at = nil, b5 = nil, bh_at = nil, bh = nil}
    endpoints[eid] = e
    order[#order + 1] = eid
  end
  return e
end
local function add(counters, field, n)
  counters[field] = (counters[field] or 0) + n
end
local function bucket(e, key, ttl)
  local b = e.buckets[key]
  if not b then
    b = {}
    e.buckets[key] = b
    e.bucket_ttl[key] = ttl
  end
  return b
end
-- The endpoint's 5-minute and hourly statistics buckets an attempt made
-- at these bucket starts counts in (an endpoint's attempts in one call
-- share them, so their keys are built once).
local function buckets_of(e, fine_at, coarse_at)
  if e.b5_at ~= fine_at then
    e.b5 = bucket(e, prefix .. 'ep_b5:' .. e.id .. ':' .. fine_at, fine_ttl)
    e.b5_at = fine_at
  end
  if e.bh_at ~= coarse_at then
    e.bh = bucket(e, prefix .. 'ep_bh:' .. e.id .. ':' .. coarse_at, coarse_ttl)
    e.bh_at = coarse_at
  end
  return e.b5, e.bh
end

local reply = {}
-- The notices of an attempt that wrote none (most): one shared empty
-- list, not a table per attempt.
local NO_NOTICES = {}
local function answer(held, entry, disabled, notices)
  reply[#reply + 1] = held
  reply[#reply + 1] = entry
  reply[#reply + 1] = disabled
  reply[#reply + 1] = #notices
  for _, member in ipairs(notices) do reply[#reply + 1] = member end
end
-- Each attempt's stored state and lease are read before the loop, with
-- one HMGET per states hash (a call's deliveries mostly share one) and
-- one ZMSCORE, and the states are written after it, with one HSET per
-- hash: a redis.call per attempt costs more than the command's work.
-- `states[hash][field]` is the delivery's state as this call left it so
-- far, so an attempt reads what an earlier one in the same call wrote,
-- as if each ran on its own. Nothing in the loop changes KEYS[1] (the
-- lease set loses this call's members after it).
local states, state_writes, hashes = {}, {}, {}
local attempt_ids, attempt_hashes, attempt_fields = {}, {}, {}
local fields_of = {}
for i = first, #ARGV, STRIDE do
  local state_hash, field = state_key(prefix, ARGV[i])
  attempt_hashes[#attempt_hashes + 1], attempt_fields[#attempt_fields + 1] = state_hash, field
  read_later(fields_of, hashes, state_hash, field)
  attempt_ids[#attempt_ids + 1] = ARGV[i]
end
for _, state_hash in ipairs(hashes) do
  local fields = fields_of[state_hash]
  local texts = read_in_slices('HMGET', state_hash, fields)
  local known = {}
  for k, field in ipairs(fields) do known[field] = texts[k] end
  states[state_hash] = known
  state_writes[state_hash] = {}
end
local leases = read_in_slices('ZMSCORE', KEYS[1], attempt_ids)

local leave_inflight = {}
local tested = {}
local expiring = {}
local requeued = 0
local nth = 0
for i = first, #ARGV, STRIDE do
  nth = nth + 1
  local delivery_id, eid, token, outcome = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local next_at, at, code, class = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local ok, gone, test, latency = ARGV[i + 8] == '1', ARGV[i + 9] == '1', ARGV[i + 10] == '1', ARGV[i + 11]
  local state_hash, field = attempt_hashes[nth], attempt_fields[nth]
  local d = read_state(states[state_hash][field], field)
  local mark = d and token .. ':'
  local e = endpoint_of(eid)
  if d and string.sub(d.recorded, 1, #mark) == mark then
    -- Already recorded by an earlier run of this very call.
    -- (Its notices, if any, were written then; a worker's sweep of
    -- KEYS[3] publishes them.)
    local last_entry = string.match(d.ids, '([^,]*)$')
    if not string.find(last_entry, '-', 1, true) then last_entry = last_entry .. '-0' end
    answer(1, last_entry, tonumber(string.sub(d.recorded, #mark + 1)) or 0, NO_NOTICES)
  elseif not e.exists then
    -- The endpoint was deleted while this attempt ran: its delivery is
    -- already cancelled; write nothing that would outlive the endpoint.
    answer(0, '', 0, NO_NOTICES)
  else
    local notice = ARGV[i + 15]
    local notices = NO_NOTICES
    -- The endpoint's congestion window (see the header).
    if ARGV[i + 17] == '1' then
      e.window = math.max(1, math.floor((e.window or e.cap) / 2))
      e.window_dirty = true
    elseif code ~= '' and e.window then
      e.window = e.window + 1
      if e.window >= e.cap then e.window = nil end
      e.window_dirty = true
    end
    local entry = redis.call('XADD', e.attempts_key, 'MAXLEN', '~', maxlen, '*',
      entry_field, ARGV[i + 14])
    e.logged = true
    local counted = not test
    local fine, coarse
    if counted then
      local stats = e.stats
      add(stats, 'attempts', 1)
      add(stats, class, 1)
      fine, coarse = buckets_of(e, ARGV[i + 12], ARGV[i + 13])
      add(fine, 'attempts', 1)
      add(fine, latency, 1)
      add(coarse, 'attempts', 1)
      add(coarse, latency, 1)
      if ok then
        add(fine, 'ok', 1)
        add(coarse, 'ok', 1)
      end
    end

    -- The circuit breaker: the endpoint's failing streak starts at its first
    -- failure after a success; past HOOKFLEET_DISABLE_AFTER (or on 410 Gone)
    -- the endpoint is disabled and its queued deliveries will be held.
    local disabled = 0
    local now = tonumber(at)
    if counted and ok then
      e.since, e.since_known, e.since_dirty = nil, true, true
    elseif counted then
      if not e.since_known then
        e.since = tonumber(redis.call('HGET', prefix .. 'ep_stats:' .. eid, 'failing_since') or '')
        e.since_known = true
      end
      if not e.since then
        e.since, e.since_dirty = now, true
      end
      if (gone or now - e.since >= disable_after) and e.active == '1' then
        local reason = 'failing'
        if gone then reason = 'gone' end
        redis.call('HSET', prefix .. 'endpoint:' .. eid, 'active', '0', 'disabled_reason', reason,
          'updated', now)
        e.active = '0'
        disabled = 1
        if notice ~= '' then
          notices = {'endpoint.disabled ' .. at .. ' ' .. int(e.since) .. ' ' .. reason ..
            ' ' .. notice}
        end
      end
    end

    -- held stays 0 when the lease expired (another worker may hold it
    -- now) or the delivery was cancelled.
    local held = 0
    if leases[nth] == token then
      local ids = short_entry_id(entry)
      local attempts = 1
      local max = ''
      if d then
        if d.ids ~= '' then ids = d.ids .. ',' .. ids end
        attempts = d.attempts + 1
        max = d.max
      elseif test then
        -- A test send has one attempt; its state says so (replays leave
        -- test sends alone by it, see replay_chunk.lua).
        max = '1'
      end
      leave_inflight[#leave_inflight + 1] = delivery_id
      e.released = e.released + 1
      if test then tested[#tested + 1] = delivery_id end
      local status = outcome
      if outcome == 'retry' then
        status = 'scheduled'
        local later = e.requeue
        if not later then
          later = {}
          e.requeue = later
        end
        later[#later + 1] = next_at
        later[#later + 1] = 'evt_' .. string.sub(delivery_id, DLV_EVENT, DLV_EVENT_END)
        local due = tonumber(next_at)
        if not e.next_due or due < e.next_due then e.next_due = due end
        requeued = requeued + 1
      end
      local last_code = code
      if code == '' then
        last_code = 'e'
        if ARGV[i + 17] == '1' then last_code = 't' end
      end
      if outcome == 'failed' and not test and e.tenant then
        local list = failed_events[e.tenant]
        if not list then
          list = {}
          failed_events[e.tenant] = list
        end
        list[#list + 1] = 0
        list[#list + 1] = 'evt_' .. string.sub(delivery_id, DLV_EVENT, DLV_EVENT_END)
      end
      local stored_at, stored_token = ARGV[i + 18], ARGV[i + 19]
      local stored_recorded = nil
      if stored_at == '' or stored_token == '' then
        stored_at = nil
      else
        stored_recorded = stored_token .. ':' .. disabled
      end
      local text = write_state({status = status, attempts = attempts,
        last_at = at, last_code = last_code, next = next_at, max = max,
        recorded = token .. ':' .. disabled, ids = ids, created = d and d.created,
        stored_at = stored_at, stored_recorded = stored_recorded}, field)
      states[state_hash][field] = text
      local writes = state_writes[state_hash]
      writes[#writes + 1] = field
      writes[#writes + 1] = text
      expiring[state_hash] = ARGV[i + 16]
      if outcome == 'failed' and notice ~= '' then
        if notices == NO_NOTICES then notices = {} end
        notices[#notices + 1] = 'message.attempt.exhausted ' .. notice
      end
      if counted then
        if outcome == 'retry' then
          add(e.stats, 'retries', 1)
        else
          add(e.stats, outcome, 1)
          add(fine, outcome, 1)
          add(coarse, outcome, 1)
        end
        if outcome == 'delivered' then
          e.success_at, e.success_code = at, code
        else
          e.failure_at, e.failure_code = at, code
        end
      end
      held = 1
    end
    for _, member in ipairs(notices) do
      redis.call('ZADD', KEYS[3], at, member)
    end
    answer(held, entry, disabled, notices)
  end
end

in_slices('ZREM', KEYS[1], leave_inflight)
for _, state_hash in ipairs(hashes) do
  in_slices('HSET', state_hash, state_writes[state_hash])
end
for key, at in pairs(expiring) do
  redis.call('PEXPIREAT', key, at)
end
local queued_delta = requeued
local unparked = false
local now_ms = nil
for _, eid in ipairs(order) do
  local e = endpoints[eid]
  local endpoint_key = prefix .. 'endpoint:' .. eid
  if e.released > 0 then
    redis.call('HSET', endpoint_key, 'busy', int(math.max(0, e.busy - e.released)))
    if e.parked then
      -- A slot is free: the parked endpoint is due again now.
      redis.call('HDEL', endpoint_key, 'parked')
      now_ms = now_ms or int(redis_now_ms())
      redis.call('ZADD', KEYS[2], 'LT', now_ms, eid)
      unparked = true
    end
  end
  if e.window_dirty then
    if e.window then
      redis.call('HSET', endpoint_key, 'window', int(e.window))
    else
      redis.call('HDEL', endpoint_key, 'window')
    end
  end
  if e.requeue then
    in_slices('ZADD', prefix .. 'ep_due:' .. eid, e.requeue)
    redis.call('ZADD', KEYS[2], 'LT', int(e.next_due), eid)
  end
  if e.fifo and e.released > 0 then
    local head = redis.call('ZRANGE', prefix .. 'ep_due:' .. eid, 0, 0)
    local created = head[1] and redis.call('ZSCORE', prefix .. 'ep_dlv:' .. eid, head[1])
    if created then
      redis.call('ZADD', KEYS[5], math.floor(tonumber(created) / 1000), eid)
    else
      redis.call('ZREM', KEYS[5], eid)
    end
  end
  if e.logged then
    redis.call('XTRIM', prefix .. 'attempts:' .. eid, 'MINID', '~', ARGV[3] .. '-0')
    -- The endpoint's delivery log (publish.lua adds to it) keeps the
    -- retention window: trimmed here, once per endpoint and batch, rather
    -- than on every publish. Scores are microseconds. Entries not yet
    -- handed out that expire with it leave the queue.
    local log_key = prefix .. 'ep_dlv:' .. eid
    local cutoff = '(' .. ARGV[3] .. '000'
    if e.qhead then
      if tonumber(e.qhead) < tonumber(ARGV[3]) * 1000 then
        queued_delta = queued_delta - redis.call('ZCOUNT', log_key, '(' .. e.qhead, cutoff)
      end
    else
      queued_delta = queued_delta - redis.call('ZCOUNT', log_key, '-inf', cutoff)
    end
    redis.call('ZREMRANGEBYSCORE', log_key, '-inf', cutoff)
  end
  local stats = prefix .. 'ep_stats:' .. eid
  for field, n in pairs(e.stats) do
    redis.call('HINCRBY', stats, field, int(n))
  end
  for key, counters in pairs(e.buckets) do
    for field, n in pairs(counters) do
      redis.call('HINCRBY', key, field, int(n))
    end
    redis.call('PEXPIRE', key, e.bucket_ttl[key])
  end
  if e.since_dirty then
    if e.since then
      redis.call('HSET', stats, 'failing_since', e.since)
    else
      redis.call('HDEL', stats, 'failing_since')
    end
  end
  if e.success_at then
    redis.call('HSET', stats, 'last_success_at', e.success_at,
      'last_success_code', e.success_code)
  end
  if e.failure_at then
    redis.call('HSET', stats, 'last_failure_at', e.failure_at,
      'last_failure_code', e.failure_code)
  end
end
for tenant, list in pairs(failed_events) do
  local index_key = prefix .. 'tfailed:' .. tenant
  in_slices('ZADD', index_key, list)
  redis.call('ZREMRANGEBYLEX', index_key, '-', '(' .. event_prefix(tonumber(ARGV[3])))
end
if queued_delta ~= 0 then redis.call('INCRBY', KEYS[4], int(queued_delta)) end
if unparked then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
for _, delivery_id in ipairs(tested) do redis.call('PUBLISH', ARGV[11], delivery_id) end
return reply
