-- rebuild.inc.lua: should this caller ask for the project's mailboxes to be rebuilt from SQL?
--
-- rebuild_due(epoch, rebuilding, retry):
--   epoch       <ns>:{p:<id>}:epoch        set by the rebuild once mailboxes are whole
--   rebuilding  <ns>:{p:<id>}:rebuilding   string, TTL `retry` s (one request at a time)
-- Returns 1 when the epoch is missing (a new or flushed Redis) and no rebuild was requested within
-- `retry` s (so a failed rebuild is asked for again, and many callers do not stampede), else 0.
local function rebuild_due(epoch, rebuilding, retry)
  if redis.call('EXISTS', epoch) == 0 and redis.call('SET', rebuilding, '1', 'NX', 'EX', retry) then
    return 1
  end
  return 0
end
