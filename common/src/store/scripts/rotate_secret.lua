-- rotate_secret.lua: replace an endpoint's signing secret, keeping the old
-- one valid for a grace period (deliveries then carry both signatures).
--
-- KEYS[1] endpoint hash  hf:{pN}:endpoint:<eid>
-- ARGV[1] tenant id  ARGV[2] new secret (whsec_…)  ARGV[3] grace period (ms)
--
-- Returns the time (epoch ms) until which the previous secret still signs,
-- or -1 when the endpoint does not exist or belongs to another tenant.
--
-- A resend of the same call (the Redis client retrying after a lost reply)
-- finds the new secret already current and answers as the first run did:
-- rotating again would make the new secret the "previous" one and drop the
-- secret receivers still verify with.

if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then
  return -1
end
local current = redis.call('HGET', KEYS[1], 'secret')
if current == ARGV[2] then
  return tonumber(redis.call('HGET', KEYS[1], 'old_secret_until')) or -1
end
local now = redis_now_ms()
local until_ms = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'secret', ARGV[2], 'old_secret', current,
  'old_secret_until', int(until_ms), 'updated', int(now))
return until_ms
