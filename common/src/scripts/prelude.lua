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

-- Creates one pending delivery of an event (publish.lua, fanout.lua) and
-- adds it to its endpoint's indexes; the caller queues it in due.
-- `event`: prefix, id, home (partition), tenant, type, now and
-- first_attempt (epoch ms, as strings), retention (ms), test (boolean).
local function create_delivery(event, endpoint_id, delivery_id)
  local delivery = event.prefix .. 'delivery:' .. delivery_id
  redis.call('HSET', delivery,
    'id', delivery_id, 'event', event.id, 'evp', event.home, 'endpoint', endpoint_id,
    'tenant', event.tenant, 'type', event.type, 'status', 'pending', 'attempts', '0',
    'created', event.now, 'next', event.first_attempt, 'claims', '0')
  if event.test then
    redis.call('HSET', delivery, 'test', '1', 'max_attempts', '1')
  end
  redis.call('PEXPIRE', delivery, event.retention)
  -- (record.lua trims this index to the retention window.)
  redis.call('ZADD', event.prefix .. 'ep_dlv:' .. endpoint_id, event.now, delivery_id)
  redis.call('SADD', event.prefix .. 'ep_open:' .. endpoint_id, delivery_id)
end

-- Redis's clock in epoch milliseconds: due times, leases and rate-limit
-- state all use it, so every worker of the fleet agrees on them.
local function redis_now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

