-- admit.lua: may a workspace's call go ahead? The first step of a heartbeat, before anything is written.
--
-- KEYS[1]  revoked set      <ns>:{p:<id>}:revoked           member <ws>: its token no longer works
-- KEYS[2]  token bucket     <ns>:{p:<id>}:rl:ws:<ws>        GCRA (gcra.inc.lua)
-- KEYS[3]  project bucket   <ns>:{p:<id>}:rl:project        GCRA (gcra.inc.lua)
-- ARGV[1]  workspace id     ARGV[2]  now (epoch seconds, float)
-- ARGV[3], ARGV[4]  token bucket: emission interval (s; 0 = no limit), tolerance (s)
-- ARGV[5], ARGV[6]  project bucket: the same
--
-- Returns -1 when the workspace is in the revoked set (a revocation reaches every process at once,
-- whatever their auth caches hold; nothing is charged), else what gcra_take returns: 0 when both
-- buckets took the call, or the milliseconds until they would (nothing is charged then).
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return -1
end
return gcra_take(2, tonumber(ARGV[2]), 3)
