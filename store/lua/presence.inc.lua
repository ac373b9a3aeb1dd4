-- presence.inc.lua: mark an admitted workspace alive (heartbeat.lua, after admit), and tell the
-- dashboards when it is back after being offline.
--
-- mark_alive(k, a), k: the keys, a: the values
--   k.presence  presence hash  <ns>:{p:<id>}:presence     field <ws> -> JSON (branch, host, alias, git)
--   k.online    online zset    <ns>:{p:<id>}:online       member <ws>, score = now (seconds)
--   k.touch     touch flag     <ns>:{p:<id>}:touch:<ws>   string, TTL a.touch_ttl
--   k.events    event stream   <ns>:{p:<id>}:events       gets `presence.online` (see a.online_event)
--   a.ws, a.now (epoch seconds), a.fields (presence JSON), a.touch_ttl (s)
--   a.offline_before  beats older than this (epoch s) mean the workspace was offline
--   a.online_event    payload JSON of the `presence.online` event, "" for none
--   a.maxlen          event stream MAXLEN ~
--   a.wake            wake channel <ns>:{p:<id>}:wake (Pub/Sub: gets the event stream's name when the
--                     event is added), "" for none
-- Returns 1 when SQL last_seen is due (the touch flag throttles SQL writes to one per TTL per
-- workspace), 0 when not. No revocation check: admit ran first in the same script (atomic).
local function mark_alive(k, a)
  redis.call('HSET', k.presence, a.ws, a.fields)
  -- one extra check on the hottest path: back after being absent (or never seen) -> tell the dashboards
  if a.online_event ~= '' then
    local last = redis.call('ZSCORE', k.online, a.ws)
    if not last or tonumber(last) < tonumber(a.offline_before) then
      redis.call('XADD', k.events, 'MAXLEN', '~', a.maxlen, '*',
                 'id', '', 'kind', 'presence.online', 'data', a.online_event)
      if a.wake ~= '' then redis.call('PUBLISH', a.wake, k.events) end
    end
  end
  redis.call('ZADD', k.online, a.now, a.ws)
  if redis.call('SET', k.touch, '1', 'NX', 'EX', a.touch_ttl) then
    return 1
  end
  return 0
end
