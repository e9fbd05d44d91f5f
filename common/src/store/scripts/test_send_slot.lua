-- test_send_slot.lua: take one of a tenant's places for a test send that
-- waits for its attempt, unless every place is taken
-- (HOOKFLEET_TEST_SEND_MAX_PENDING), in one step (a count followed by a
-- separate add let concurrent test sends overshoot the cap).
--
-- KEYS[1] the tenant's waiting test sends  hf:{t:<tenant>}:test_sends
-- ARGV[1] the cap  ARGV[2] this test send's token (random)
-- ARGV[3] how long it may wait (ms): the place frees itself then, so an
--         API process that dies while waiting does not keep it
--
-- Returns 0 when the place was taken; else how many ms until the first
-- taken place frees itself (nothing written but the removal of places
-- already free).

local now = redis_now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil(tonumber(first[2]) - now))
end
local wait = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], int(now + wait), ARGV[2])
-- The set goes when its last place would have freed itself (a later place
-- may outlive this expiry by a lower wait; that place then frees early,
-- which only errs towards letting a test send through).
redis.call('PEXPIRE', KEYS[1], int(wait + 1000))
return 0
