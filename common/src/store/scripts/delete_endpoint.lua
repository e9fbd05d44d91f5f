-- delete_endpoint.lua: delete an endpoint; its deliveries that had not
-- ended read as cancelled from now on.
--
-- KEYS[1] endpoint hash     hf:{pN}:endpoint:<eid>
-- KEYS[2] endpoint ep_due   hf:{pN}:ep_due:<eid>
-- KEYS[3] ready zset        hf:{pN}:ready
-- KEYS[4] rate state        hf:{pN}:rate:<eid>
-- KEYS[5] endpoint counters hf:{pN}:ep_stats:<eid>
-- KEYS[6] endpoint log      hf:{pN}:ep_dlv:<eid>
-- KEYS[7] attempt stream    hf:{pN}:attempts:<eid>
-- KEYS[8] queued counter    hf:{pN}:queued
-- KEYS[9] ordered endpoints held by a retry  hf:{pN}:fifo_heads
-- ARGV[1] tenant id  ARGV[2] retention (ms): the log of a deleted endpoint
-- stays readable through its deliveries until then  ARGV[3] endpoint id
--
-- Returns -1 when the endpoint does not exist or belongs to another tenant,
-- else the number of deliveries cancelled (those waiting; one being
-- attempted right now is cancelled too: record.lua writes nothing for an
-- endpoint that is gone). Constant work however many were waiting: they
-- are not touched one by one, only no longer handed out.

if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then
  return -1
end
local head = redis.call('HGET', KEYS[1], 'qhead')
local lower = '-inf'
if head then lower = '(' .. head end
local cancelled = redis.call('ZCARD', KEYS[2]) + redis.call('ZCOUNT', KEYS[6], lower, '+inf')
-- (UNLINK: a large ep_due is freed in the background.)
redis.call('UNLINK', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[9], ARGV[3])
if cancelled > 0 then redis.call('INCRBY', KEYS[8], int(-cancelled)) end
redis.call('PEXPIRE', KEYS[6], ARGV[2])
redis.call('PEXPIRE', KEYS[7], ARGV[2])
return cancelled
