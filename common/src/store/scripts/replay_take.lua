-- replay_take.lua: a worker takes one replay of a partition to run: the
-- first in the partition's replays set whose time has come (a new one, or
-- one whose worker stopped renewing its lease).
--
-- KEYS[1] replays zset  hf:{pN}:replays (running replays, score = when a
--         worker may take it: its start, or its holder's lease deadline)
-- ARGV[1] partition key prefix  ARGV[2] lease (ms)  ARGV[3] the taker's
--         token (unique per worker and take)
--
-- Returns the replay's id, or false when none is due. The replay's record
-- names its holder (`worker`): replay_chunk.lua runs a chunk only for it,
-- so a worker that lost the lease (it stalled, another took over) queues
-- nothing more. A replay that is no longer running (cancelled, completed)
-- leaves the set here.

local prefix = ARGV[1]
local now = redis_now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now), 'LIMIT', '0', '4')
for _, replay_id in ipairs(due) do
  local key = prefix .. 'replay:' .. replay_id
  if redis.call('HGET', key, 'status') == 'running' then
    redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[2])), replay_id)
    redis.call('HSET', key, 'worker', ARGV[3], 'heartbeat', int(now))
    return replay_id
  end
  redis.call('ZREM', KEYS[1], replay_id)
end
return false
