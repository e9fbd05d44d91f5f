-- tenant_deletion_take.lua: a worker takes one tenant deletion to run: the
-- first whose lease has expired (a new one has none).
--
-- KEYS[1] deletions hash  hf:tenant_deletions (`job:<tid>` → the job,
--         JSON written by store::tenant_deletion; `lease:<tid>` →
--         `<lease deadline ms> <holder's token>`)
-- ARGV[1] lease (ms)  ARGV[2] the taker's token (unique per worker and take)
--
-- Returns {tenant id, job JSON}, or false when none is due. From then on
-- tenant_deletion_step.lua saves the job's progress only for this token,
-- so a worker that lost the lease (it stalled, another took over) can no
-- longer move the cursor. The work of a step is idempotent (it removes
-- what is there), so a step done twice by two holders removes nothing
-- twice.

local now = redis_now_ms()
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local tenant = string.match(all[i], '^job:(.+)$')
  if tenant then
    local lease = redis.call('HGET', KEYS[1], 'lease:' .. tenant)
    local deadline = 0
    if lease then deadline = tonumber(string.match(lease, '^(%d+)')) or 0 end
    if deadline <= now then
      redis.call('HSET', KEYS[1], 'lease:' .. tenant,
        int(now + tonumber(ARGV[1])) .. ' ' .. ARGV[2])
      return {tenant, all[i + 1]}
    end
  end
end
return false
