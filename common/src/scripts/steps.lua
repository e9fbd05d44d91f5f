-- steps.lua: releasing held and cancelling open deliveries a step at a
-- time (claim.lua, update_endpoint.lua, delete_endpoint.lua), after
-- prelude.lua.

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
