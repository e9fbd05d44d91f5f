-- state.lua: a delivery's stored state (delivery_state.rs has the format
-- and why), for the scripts that read or write it, after prelude.lua.
--
--   <status>|<attempts>|<last_at>|<last_code>|<next>|<max_attempts>|<recorded>|<attempt ids>

-- The stored form is compact (delivery_state.rs): the status as one
-- letter, the recorded lease token as ms after `last_at`, entry ids
-- without a `-0` sequence. Each costs a table lookup or one subtraction:
-- numbers in another base cost a Lua loop (or a C call per number) on
-- every attempt, several times the write itself. The table read_state
-- gives (and write_state takes) holds values as the scripts use them: the
-- status word, the absolute token; entry ids as stored (an id without
-- `-` has sequence 0).
local STATUS_LETTER = {pending = 'p', scheduled = 's', delivered = 'd', failed = 'f'}
local STATUS_WORD = {p = 'pending', s = 'scheduled', d = 'delivered', f = 'failed'}

-- An attempt-log entry id as a state stores it: `-0` left out.
local function short_entry_id(id)
  return string.match(id, '^(%d+)%-0$') or id
end

-- Parses a states:<bucket> value (compact, or the earlier form with the
-- status word and absolute token); nil when there is none.
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
  local status, recorded = fields[1], fields[7]
  local word = STATUS_WORD[status]
  if word then
    status = word
    local colon = string.find(recorded, ':', 1, true)
    local last_at = tonumber(fields[3])
    if colon and last_at then
      local token = tonumber(string.sub(recorded, 1, colon - 1))
      if token then recorded = int(last_at + token) .. string.sub(recorded, colon) end
    end
  end
  return {status = status, attempts = tonumber(fields[2]) or 0, last_at = fields[3],
    last_code = fields[4], next = fields[5], max = fields[6], recorded = recorded,
    ids = string.sub(text, start)}
end

-- The stored form of a state table (its values strings, or attempts a
-- number).
local function write_state(s)
  local recorded = s.recorded
  local colon = string.find(recorded, ':', 1, true)
  local last_at = tonumber(s.last_at)
  if colon and last_at then
    local token = tonumber(string.sub(recorded, 1, colon - 1))
    if token then recorded = int(token - last_at) .. string.sub(recorded, colon) end
  end
  return (STATUS_LETTER[s.status] or s.status) .. '|' .. int(s.attempts) .. '|' .. s.last_at ..
    '|' .. s.last_code .. '|' .. s.next .. '|' .. s.max .. '|' .. recorded .. '|' .. s.ids
end

-- A delivery's states:<bucket> key and field, from its id
-- (`dlv_<event body><endpoint body>`; the bucket is the first six
-- characters of the event's body).
local function state_key(prefix, delivery_id)
  return prefix .. 'states:' .. string.sub(delivery_id, DLV_BODY, DLV_BUCKET_END),
    string.sub(delivery_id, DLV_BODY)
end
