-- backlog.lua: how many deliveries of one endpoint have not ended: first
-- attempts not yet handed out and later attempts waiting (together: those
-- held while it is paused or disabled), and those being attempted now.
-- Read only. Returns {waiting, in flight}.
--
-- KEYS[1] endpoint hash  hf:{pN}:endpoint:<eid>
-- KEYS[2] endpoint log   hf:{pN}:ep_dlv:<eid>
-- KEYS[3] ep_due         hf:{pN}:ep_due:<eid>
-- KEYS[4] inflight zset  hf:{pN}:inflight
-- ARGV[1] the endpoint id's body (what ends its delivery ids)
--
-- Counting the in-flight ones reads the partition's lease set, which holds
-- at most the fleet's concurrency.

local head = redis.call('HGET', KEYS[1], 'qhead')
local lower = '-inf'
if head then lower = '(' .. head end
local waiting = redis.call('ZCOUNT', KEYS[2], lower, '+inf') + redis.call('ZCARD', KEYS[3])
local flying = 0
local suffix = ARGV[1]
for _, delivery_id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if string.sub(delivery_id, -#suffix) == suffix then flying = flying + 1 end
end
return {waiting, flying}
