-- prelude.lua: helpers every script starts with (scripts.rs puts this
-- file in front of each script's own text, and state.lua after it for
-- the scripts that read or write a delivery's state: each helper is a
-- closure made anew on every call, ~1,000 instructions, so a script
-- carries only the ones it uses).

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

-- Redis's clock in epoch milliseconds: due times, leases and rate-limit
-- state all use it, so every worker of the fleet agrees on them.
local function redis_now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end


-- Redis's clock in epoch milliseconds and microseconds (one TIME call):
-- microseconds order an endpoint's deliveries (ep_dlv scores).
local function redis_clock()
  local clock = redis.call('TIME')
  local seconds, micros = tonumber(clock[1]), tonumber(clock[2])
  return seconds * 1000 + math.floor(micros / 1000), seconds * 1000000 + micros
end
