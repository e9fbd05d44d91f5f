-- prelude.lua: helpers every script starts with (scripts.rs puts this
-- file in front of each script's own text).

-- Runs a variadic command over `values` in slices: Lua's unpack() stops at
-- a few thousand values. The step is even, so ZADD's score/member pairs
-- stay whole. Nothing is sent for an empty list.
local function in_slices(command, key, values)
  local step = 1000
  for i = 1, #values, step do
    redis.call(command, key, unpack(values, i, math.min(i + step - 1, #values)))
  end
end

-- An integer as the string Redis gets anyway: a Lua number passed to
-- redis.call is formatted with "%.17g" (~0.5 µs each), so scripts pass
-- integers as strings, each made once.
local function int(n)
  return string.format('%d', n)
end

-- The index entries of the deliveries a script creates, gathered so that
-- each endpoint's indexes get one ZADD and one SADD per call however many
-- events it publishes (create_delivery adds, write_delivery_indexes writes).
local function new_delivery_indexes()
  return {order = {}, dlv = {}, open = {}}
end

-- Creates one pending delivery of an event (publish.lua, fanout.lua) and
-- notes its index entries in `indexes`; the caller queues it in due.
-- `event`: prefix, id, home (partition), tenant, type, now and
-- first_attempt (epoch ms, as strings), retention (ms), test (boolean).
local function create_delivery(event, endpoint_id, delivery_id, indexes)
  local delivery = event.prefix .. 'delivery:' .. delivery_id
  if event.test then
    redis.call('HSET', delivery,
      'id', delivery_id, 'event', event.id, 'evp', event.home, 'endpoint', endpoint_id,
      'tenant', event.tenant, 'type', event.type, 'status', 'pending', 'attempts', '0',
      'created', event.now, 'next', event.first_attempt, 'claims', '0',
      'test', '1', 'max_attempts', '1')
  else
    redis.call('HSET', delivery,
      'id', delivery_id, 'event', event.id, 'evp', event.home, 'endpoint', endpoint_id,
      'tenant', event.tenant, 'type', event.type, 'status', 'pending', 'attempts', '0',
      'created', event.now, 'next', event.first_attempt, 'claims', '0')
  end
  redis.call('PEXPIRE', delivery, event.retention)
  local dlv = indexes.dlv[endpoint_id]
  if not dlv then
    dlv = {}
    indexes.dlv[endpoint_id] = dlv
    indexes.open[endpoint_id] = {}
    indexes.order[#indexes.order + 1] = endpoint_id
  end
  dlv[#dlv + 1] = event.now
  dlv[#dlv + 1] = delivery_id
  local open = indexes.open[endpoint_id]
  open[#open + 1] = delivery_id
end

-- Writes what create_delivery noted: the endpoint's delivery log index
-- (record.lua trims it to the retention window) and its open set.
local function write_delivery_indexes(prefix, indexes)
  for _, endpoint_id in ipairs(indexes.order) do
    in_slices('ZADD', prefix .. 'ep_dlv:' .. endpoint_id, indexes.dlv[endpoint_id])
    in_slices('SADD', prefix .. 'ep_open:' .. endpoint_id, indexes.open[endpoint_id])
  end
end

-- How many held deliveries one call releases, or open deliveries it
-- cancels: a script must not hold Redis for long, and an endpoint can have
-- millions. What is left is marked in due (see claim.lua) and continued,
-- a step per claim, by the workers.
local STEP = 1000

-- Moves up to STEP held deliveries (`held_key`, an endpoint's ep_held) back
-- into due at `now` (a string). Returns how many moved and how many are
-- left held.
local function release_held(held_key, due_key, now)
  local ids = redis.call('ZRANGE', held_key, 0, STEP - 1)
  if #ids == 0 then return 0, 0 end
  local queued = {}
  for _, id in ipairs(ids) do
    queued[#queued + 1] = now
    queued[#queued + 1] = id
  end
  in_slices('ZADD', due_key, queued)
  in_slices('ZREM', held_key, ids)
  return #ids, redis.call('ZCARD', held_key)
end

-- Cancels up to STEP open deliveries (`open_key`, an endpoint's ep_open)
-- of a deleted endpoint: out of due and inflight, the claim counter bumped
-- (so an attempt in progress records nothing), status cancelled. Returns
-- how many were cancelled and how many are left open.
local function cancel_open(prefix, open_key, due_key, inflight_key, now)
  local ids = redis.call('SPOP', open_key, STEP)
  if #ids > 0 then
    in_slices('ZREM', due_key, ids)
    in_slices('ZREM', inflight_key, ids)
    for _, id in ipairs(ids) do
      local delivery = prefix .. 'delivery:' .. id
      if redis.call('EXISTS', delivery) == 1 then
        redis.call('HINCRBY', delivery, 'claims', 1)
        redis.call('HSET', delivery, 'status', 'cancelled', 'next', '', 'last_at', now)
      end
    end
  end
  return #ids, redis.call('SCARD', open_key)
end

-- Redis's clock in epoch milliseconds: due times, leases and rate-limit
-- state all use it, so every worker of the fleet agrees on them.
local function redis_now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

