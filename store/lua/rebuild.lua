-- rebuild.lua: should this caller ask for the project's mailboxes to be rebuilt from SQL?
--
-- KEYS[1]  epoch            <ns>:{p:<id>}:epoch             set by the rebuild once mailboxes are whole
-- KEYS[2]  rebuild flag     <ns>:{p:<id>}:rebuilding        string, TTL ARGV[1] (one request at a time)
-- ARGV[1]  rebuild flag TTL (s)
--
-- Returns 1 when the epoch is missing (a new or flushed Redis) and no rebuild was requested within
-- ARGV[1] s (so a failed rebuild is asked for again, and many callers do not stampede), else 0.
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return 1
end
return 0
