-- deliveries.lua: creating deliveries (publish.lua, fanout.lua), after
-- prelude.lua.

-- The index entries of the deliveries a script creates, gathered so that
-- each endpoint's indexes get one ZADD and one SADD per call however many
-- events it publishes (create_delivery adds, write_delivery_indexes writes).
local function new_delivery_indexes()
  return {order = {}, dlv = {}, open = {}}
end

-- Creates one pending delivery of an event (publish.lua, fanout.lua) and
-- notes its index entries in `indexes` (or, when that is nil, writes them
-- at once: gathering only pays when a call creates several deliveries of
-- one endpoint, and its tables cost a single event more than it saves);
-- the caller queues it in due.
-- `event`: prefix, id, home (partition), tenant, type, now and
-- first_attempt (epoch ms, as strings), retention (ms), test (boolean).
local function create_delivery(event, endpoint_id, delivery_id, indexes)
  local delivery = event.prefix .. 'delivery:' .. delivery_id
  if event.test then
    redis.call('HSET', delivery,
      'id', delivery_id, 'event', event.id, 'evp', event.home, 'endpoint', endpoint_id,
      'tenant', event.tenant, 'type', event.type, 'status', 'pending', 'attempts', '0',
      'created', event.now, 'next', event.first_attempt, 'claims', '0',
      'test', '1', 'max_attempts', '1')
  else
    redis.call('HSET', delivery,
      'id', delivery_id, 'event', event.id, 'evp', event.home, 'endpoint', endpoint_id,
      'tenant', event.tenant, 'type', event.type, 'status', 'pending', 'attempts', '0',
      'created', event.now, 'next', event.first_attempt, 'claims', '0')
  end
  redis.call('PEXPIRE', delivery, event.retention)
  if not indexes then
    -- (record.lua trims this index to the retention window.)
    redis.call('ZADD', event.prefix .. 'ep_dlv:' .. endpoint_id, event.now, delivery_id)
    redis.call('SADD', event.prefix .. 'ep_open:' .. endpoint_id, delivery_id)
    return
  end
  local dlv = indexes.dlv[endpoint_id]
  if not dlv then
    dlv = {}
    indexes.dlv[endpoint_id] = dlv
    indexes.open[endpoint_id] = {}
    indexes.order[#indexes.order + 1] = endpoint_id
  end
  dlv[#dlv + 1] = event.now
  dlv[#dlv + 1] = delivery_id
  local open = indexes.open[endpoint_id]
  open[#open + 1] = delivery_id
end

-- Writes what create_delivery noted: the endpoint's delivery log index
-- (record.lua trims it to the retention window) and its open set.
local function write_delivery_indexes(prefix, indexes)
  for _, endpoint_id in ipairs(indexes.order) do
    in_slices('ZADD', prefix .. 'ep_dlv:' .. endpoint_id, indexes.dlv[endpoint_id])
    in_slices('SADD', prefix .. 'ep_open:' .. endpoint_id, indexes.open[endpoint_id])
  end
end
