-- state.lua: a delivery's stored state (delivery_state.rs has the format
-- and why), for the scripts that read or write it, after prelude.lua.
--
--   <status>|<attempts>|<last_at>|<last_code>|<next>|<max_attempts>|<recorded>|<attempt ids>

-- Parses a states:<bucket> value; nil when there is none.
local function read_state(text)
  if not text then return nil end
  local fields = {}
  local start = 1
  for i = 1, 7 do
    local bar = string.find(text, '|', start, true)
    if not bar then return nil end
    fields[i] = string.sub(text, start, bar - 1)
    start = bar + 1
  end
  return {status = fields[1], attempts = tonumber(fields[2]) or 0, last_at = fields[3],
    last_code = fields[4], next = fields[5], max = fields[6], recorded = fields[7],
    ids = string.sub(text, start)}
end

-- The stored form of a state table (its values strings, or attempts a
-- number).
local function write_state(s)
  return s.status .. '|' .. int(s.attempts) .. '|' .. s.last_at .. '|' .. s.last_code .. '|' ..
    s.next .. '|' .. s.max .. '|' .. s.recorded .. '|' .. s.ids
end

-- A delivery's states:<bucket> key and field, from its id
-- (`dlv_<event body><endpoint body>`; the bucket is the first six
-- characters of the event's body).
local function state_key(prefix, delivery_id)
  return prefix .. 'states:' .. string.sub(delivery_id, DLV_BODY, DLV_BUCKET_END),
    string.sub(delivery_id, DLV_BODY)
end
