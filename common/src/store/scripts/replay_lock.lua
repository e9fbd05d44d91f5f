-- replay_lock.lua: renew or release the hold a running replay has on its
-- endpoint, only if it is still the holder (a replay stalled past the
-- hold's expiry may find another replay holding it; it must not extend or
-- drop that one's hold).
--
-- KEYS[1] running replay  hf:{pN}:replay_running:<eid>
-- ARGV[1] the replay's id
-- ARGV[2] 'renew' or 'release'
-- ARGV[3] hold (ms), for 'renew'
--
-- Returns 1 when the replay held it (and now renewed or released it),
-- 0 when it did not (nothing written).

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'release' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
