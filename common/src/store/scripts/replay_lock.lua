-- replay_lock.lua: release the hold a replay has on its endpoint, only if
-- it is still the holder (it must not drop another replay's hold).
--
-- KEYS[1] running replay  hf:{pN}:replay_running:<eid>
-- ARGV[1] the replay's id
--
-- Returns 1 when the replay held it (and now released it), 0 when it did
-- not (nothing written).

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
