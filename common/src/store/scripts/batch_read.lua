-- batch_read.lua: helpers for the scripts that gather the values they
-- need by key and read each key's with one variadic command (claim.lua,
-- record.lua), after prelude.lua: a redis.call per value costs more than
-- the read itself.

-- The answers of `command` (HMGET, ZMSCORE) on `key` for each of `names`,
-- in their order (false where there is none), read in slices as
-- prelude.lua's in_slices writes: Lua's unpack() stops at a few thousand
-- values.
local function read_in_slices(command, key, names)
  local answers = {}
  for from = 1, #names, 1000 do
    local upto = math.min(from + 999, #names)
    local slice = redis.call(command, key, unpack(names, from, upto))
    for k = from, upto do answers[k] = slice[k - from + 1] end
  end
  return answers
end

-- Adds `name` to the names to read from `key`: `names_of[key]`, a list in
-- the order they came, with `key` appended to `keys` the first time it
-- comes (so the reads go in a fixed order).
local function read_later(names_of, keys, key, name)
  local names = names_of[key]
  if not names then
    names = {}
    names_of[key] = names
    keys[#keys + 1] = key
  end
  names[#names + 1] = name
end
