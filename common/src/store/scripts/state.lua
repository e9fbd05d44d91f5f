-- state.lua: a delivery's stored state (delivery_state.rs has the format
-- and why), for the scripts that read or write it, after prelude.lua.
--
--   <status>|<attempts>|<last_at>|<last_code>|<next>|<max_attempts>|<recorded>|<attempt ids>

-- The stored form is compact (delivery_state.rs): the status as one
-- upper-case letter, `last_at` as ms after the event's creation (the
-- first ten characters of the field, the delivery id's body, in base 32),
-- the recorded lease token as ms after `last_at`, and the entry ids as
-- `<ms after last_at>[.<sequence>]`. Each costs a table lookup or one
-- subtraction (the creation time ten small steps): numbers in another
-- base cost a Lua loop (or a C call per number) on every attempt, several
-- times the write itself. The table read_state gives (and write_state
-- takes) holds values as the scripts use them: the status word, `last_at`
-- and the token absolute, entry ids absolute without a `-0` sequence.
-- The forms of earlier layouts still read: a lower-case letter (`last_at`
-- and the ids absolute, the token relative) or a word (all absolute).
local STATUS_LETTER = {pending = 'P', scheduled = 'S', delivered = 'D', failed = 'F'}
local STATUS_WORD = {P = 'pending', S = 'scheduled', D = 'delivered', F = 'failed',
  p = 'pending', s = 'scheduled', d = 'delivered', f = 'failed'}

-- An attempt-log entry id as a state stores it: `-0` left out.
local function short_entry_id(id)
  return string.match(id, '^(%d+)%-0$') or id
end

-- The creation time (epoch ms) of the event of the delivery whose state
-- field (its id's body) is `field`: its first ten characters, in the ids'
-- base 32 (`0-9`, then `a-z` without i, l, o, u); nil when they are not.
local function created_of(field)
  local t = 0
  for i = 1, 10 do
    local c = string.byte(field, i)
    if not c then return nil end
    local v
    if c >= 48 and c <= 57 then
      v = c - 48
    elseif c >= 97 and c <= 122 and c ~= 105 and c ~= 108 and c ~= 111 and c ~= 117 then
      v = c - 87
      if c > 105 then v = v - 1 end
      if c > 108 then v = v - 1 end
      if c > 111 then v = v - 1 end
      if c > 117 then v = v - 1 end
    else
      return nil
    end
    t = t * 32 + v
  end
  return t
end

-- Each of the comma-separated entry ids `ids` as `convert(id, at)` gives
-- it (nil: left out). The converters below take `at` as an argument
-- rather than capturing it: a closure made per call costs more than
-- the conversion of a single id, the common case.
local function map_ids(ids, convert, at)
  if not string.find(ids, ',', 1, true) then return convert(ids, at) or '' end
  local out = {}
  for id in string.gmatch(ids, '[^,]+') do out[#out + 1] = convert(id, at) end
  return table.concat(out, ',')
end

-- A stored entry id (`<ms after at>[.<sequence>]`) as an absolute one.
local function absolute_id(id, at)
  local ms, seq = string.match(id, '^(%-?%d+)%.?(%d*)$')
  if not ms then return nil end
  if seq == '' then return int(at + tonumber(ms)) end
  return int(at + tonumber(ms)) .. '-' .. seq
end

-- An absolute entry id (`-0` left out or not) as a stored one.
local function stored_id(id, at)
  local ms, seq = string.match(id, '^(%d+)%-?(%d*)$')
  if not ms then return nil end
  if seq == '' or seq == '0' then return int(tonumber(ms) - at) end
  return int(tonumber(ms) - at) .. '.' .. seq
end

-- Parses a states:<bucket> value (any layout's form) of the delivery
-- whose field is `field`; nil when there is none. Without `field`, only
-- its status, attempts and max are read (for a script that does not
-- write it back: the times are not converted, and write_state refuses
-- the table).
local function read_state(text, field)
  if not text then return nil end
  local fields = {}
  local start = 1
  for i = 1, 7 do
    local bar = string.find(text, '|', start, true)
    if not bar then return nil end
    fields[i] = string.sub(text, start, bar - 1)
    start = bar + 1
  end
  local status, last_at, recorded = fields[1], fields[3], fields[7]
  local word = STATUS_WORD[status]
  if not field then
    return {status = word or status, attempts = tonumber(fields[2]) or 0, max = fields[6]}
  end
  local ids = string.sub(text, start)
  local created
  if word then
    local at = tonumber(last_at)
    if at and STATUS_LETTER[word] == status then
      created = created_of(field)
      at = at + (created or 0)
      last_at = int(at)
      ids = map_ids(ids, absolute_id, at)
    end
    status = word
    local colon = string.find(recorded, ':', 1, true)
    if colon and at then
      local token = tonumber(string.sub(recorded, 1, colon - 1))
      if token then recorded = int(at + token) .. string.sub(recorded, colon) end
    end
  end
  return {status = status, attempts = tonumber(fields[2]) or 0, last_at = last_at,
    last_code = fields[4], next = fields[5], max = fields[6], recorded = recorded, ids = ids,
    created = created}
end

-- The stored form of a state table (its values strings, or attempts a
-- number) of the delivery whose field is `field` (`s.created`, when
-- read_state gave it, saves decoding its creation time again). A caller
-- that has `last_at` and the token already counted as stored (record.lua,
-- whose worker counts them) passes them as `s.stored_at` and
-- `s.stored_recorded`: each number formatted here costs as much as the
-- rest of the write.
local function write_state(s, field)
  local recorded, last_at, ids = s.recorded, s.last_at, s.ids
  local at = tonumber(last_at)
  local letter = STATUS_LETTER[s.status]
  if at and letter and s.stored_at then
    last_at, recorded = s.stored_at, s.stored_recorded
    ids = map_ids(ids, stored_id, at)
  else
    local created = at and (s.created or created_of(field))
    if created then
      last_at = int(at - created)
      ids = map_ids(ids, stored_id, at)
    elseif at and letter then
      -- (No creation time to count from: the previous layout's form.)
      letter = string.lower(letter)
    end
    local colon = string.find(recorded, ':', 1, true)
    if colon and at then
      local token = tonumber(string.sub(recorded, 1, colon - 1))
      if token then recorded = int(token - at) .. string.sub(recorded, colon) end
    end
  end
  return (letter or s.status) .. '|' .. int(s.attempts) .. '|' .. last_at ..
    '|' .. s.last_code .. '|' .. s.next .. '|' .. s.max .. '|' .. recorded .. '|' .. ids
end

-- A delivery's states:<bucket> key and field, from its id
-- (`dlv_<event body><endpoint body>`; the bucket is the first six
-- characters of the event's body).
local function state_key(prefix, delivery_id)
  return prefix .. 'states:' .. string.sub(delivery_id, DLV_BODY, DLV_BUCKET_END),
    string.sub(delivery_id, DLV_BODY)
end
