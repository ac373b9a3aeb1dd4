-- admit.inc.lua: may a workspace's call go ahead? The first step of heartbeat.lua, before anything is
-- written. Needs gcra.inc.lua (included before this file).
--
-- admit(revoked, ws, now, first, last, arg0):
--   revoked         the revoked set <ns>:{p:<id>}:revoked (member <ws>: its token no longer works)
--   ws, now         workspace id, now (epoch seconds, number)
--   first..last     the KEYS indexes of its GCRA buckets (token <ns>:{p:<id>}:rl:ws:<ws>, then project
--                   <ns>:{p:<id>}:rl:project), shaped by ARGV from arg0 on (see gcra_take)
-- Returns -1 when the workspace is in the revoked set (a revocation reaches every process at once,
-- whatever their auth caches hold; nothing is charged), else what gcra_take returns: 0 when every
-- bucket took the call, or the milliseconds until they would (nothing is charged then).
local function admit(revoked, ws, now, first, last, arg0)
  if redis.call('SISMEMBER', revoked, ws) == 1 then
    return -1
  end
  return gcra_take(first, last, now, arg0)
end
