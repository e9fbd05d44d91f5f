-- replay_cancel.lua: cancel a running replay: it queues nothing more
-- (replay_chunk.lua runs only while its status is `running`), leaves the
-- partition's replays set, and lets its endpoint have another replay.
--
-- KEYS[1] replay hash     hf:{pN}:replay:<rid>
-- KEYS[2] replays zset    hf:{pN}:replays
-- KEYS[3] running replay  hf:{pN}:replay_running:<eid>
-- ARGV[1] replay id
--
-- Returns 1 when it was running and is now cancelled, 0 when it had
-- already ended (nothing written).

if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local now = int(redis_now_ms())
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished', now, 'heartbeat', now)
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
