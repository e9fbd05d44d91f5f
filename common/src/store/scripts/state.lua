-- state.lua: a delivery's stored state (delivery_state.rs has the format
-- and why), for the scripts that read or write it, after prelude.lua.
--
--   <status>|<attempts>|<last_at>|<last_code>|<next>|<max_attempts>|<recorded>|<attempt ids>

-- The stored form is compact (delivery_state.rs): the status as one
-- letter, times, lease tokens and attempt-log entry ids in base 36. The
-- table read_state gives (and write_state takes) holds them as the scripts
-- use them: the status word, decimal strings, `<ms>-<seq>` entry ids.
local STATUS_LETTER = {pending = 'p', scheduled = 's', delivered = 'd', failed = 'f'}
local STATUS_WORD = {p = 'pending', s = 'scheduled', d = 'delivered', f = 'failed'}

-- A non-negative whole number (or its decimal text) in base 36; '' for ''.
local function to36(value)
  local n = tonumber(value)
  if not n then return '' end
  if n == 0 then return '0' end
  local digits = {}
  while n > 0 do
    local d = n % 36
    digits[#digits + 1] = string.char(d < 10 and 48 + d or 87 + d)
    n = (n - d) / 36
  end
  return string.reverse(table.concat(digits))
end

-- Base-36 text back to decimal text; '' for ''.
local function from36(text)
  local n = tonumber(text, 36)
  if not n then return '' end
  return int(n)
end

-- Comma-separated entry ids, each `<ms>-<seq>` (`-<seq>` left out when 0
-- in the compact form), converted by `convert` on the ms.
local function map_ids(ids, convert, compact)
  if ids == '' then return '' end
  local out = {}
  for id in string.gmatch(ids, '[^,]+') do
    local ms, seq = string.match(id, '^([^-]*)-?(.*)$')
    if seq == '' then seq = '0' end
    if compact and seq == '0' then
      out[#out + 1] = convert(ms)
    else
      out[#out + 1] = convert(ms) .. '-' .. seq
    end
  end
  return table.concat(out, ',')
end

-- Parses a states:<bucket> value (compact, or the earlier decimal form
-- with the status word); nil when there is none.
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
  local ids = string.sub(text, start)
  local word = STATUS_WORD[fields[1]]
  if not word then
    return {status = fields[1], attempts = tonumber(fields[2]) or 0, last_at = fields[3],
      last_code = fields[4], next = fields[5], max = fields[6], recorded = fields[7], ids = ids}
  end
  local token, disabled = string.match(fields[7], '^([^:]*):?(.*)$')
  local recorded = ''
  if fields[7] ~= '' then recorded = from36(token) .. ':' .. disabled end
  return {status = word, attempts = tonumber(fields[2]) or 0, last_at = from36(fields[3]),
    last_code = fields[4], next = from36(fields[5]), max = fields[6], recorded = recorded,
    ids = map_ids(ids, from36, false)}
end

-- The stored form of a state table (its values strings, or attempts a
-- number).
local function write_state(s)
  local recorded = ''
  if s.recorded ~= '' then
    local token, disabled = string.match(s.recorded, '^([^:]*):?(.*)$')
    recorded = to36(token) .. ':' .. disabled
  end
  return (STATUS_LETTER[s.status] or s.status) .. '|' .. int(s.attempts) .. '|' ..
    to36(s.last_at) .. '|' .. s.last_code .. '|' .. to36(s.next) .. '|' .. s.max .. '|' ..
    recorded .. '|' .. map_ids(s.ids, to36, true)
end

-- A delivery's states:<bucket> key and field, from its id
-- (`dlv_<event body><endpoint body>`; the bucket is the first six
-- characters of the event's body).
local function state_key(prefix, delivery_id)
  return prefix .. 'states:' .. string.sub(delivery_id, DLV_BODY, DLV_BUCKET_END),
    string.sub(delivery_id, DLV_BODY)
end
