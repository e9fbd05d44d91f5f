-- event_heads.lua: the heads of some events' records (stored_event.rs),
-- without their bodies: what a page of the delivery log needs (tenant,
-- type, test flag) without reading every body. Read only.
--
-- KEYS[i] the events hash of event i   hf:{pN}:events:<bucket>
-- ARGV[i] event i's id
--
-- Returns, per event in order, `<flag><tenant id>\n<event type>`, or false
-- when the event is gone.

local heads = {}
for i = 1, #KEYS do
  local record = redis.call('HGET', KEYS[i], ARGV[i])
  local head = false
  if record then
    local tenant_end = string.find(record, '\n', 1, true)
    local type_end = tenant_end and string.find(record, '\n', tenant_end + 1, true)
    if type_end then head = string.sub(record, 1, type_end - 1) end
  end
  heads[i] = head
end
return heads
