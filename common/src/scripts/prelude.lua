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

-- Redis's clock in epoch milliseconds: due times, leases and rate-limit
-- state all use it, so every worker of the fleet agrees on them.
local function redis_now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

