-- presence.lua: mark an admitted workspace alive (admit.lua ran first), and tell the dashboards when
-- it is back after being offline.
--
-- KEYS[1]  revoked set      <ns>:{p:<id>}:revoked           member <ws>: checked again, see below
-- KEYS[2]  presence hash    <ns>:{p:<id>}:presence          field <ws> -> JSON (branch, host, alias, git)
-- KEYS[3]  online zset      <ns>:{p:<id>}:online            member <ws>, score = now (seconds)
-- KEYS[4]  touch flag       <ns>:{p:<id>}:touch:<ws>        string, TTL ARGV[4]
-- KEYS[5]  event stream     <ns>:{p:<id>}:events            gets `presence.online` (see ARGV[6])
-- ARGV[1]  workspace id     ARGV[2]  now (epoch seconds, float)   ARGV[3]  presence JSON
-- ARGV[4]  touch TTL (s)
-- ARGV[5]  beats older than this (epoch s) mean the workspace was offline
-- ARGV[6]  payload JSON of the `presence.online` event, "" for none   ARGV[7]  event stream MAXLEN ~
-- ARGV[8]  wake channel <ns>:{p:<id>}:wake (Pub/Sub: gets the event stream's name when the event is added)
--
-- Returns -1 and writes nothing when the workspace is revoked: revoke.lua may have run between
-- admit.lua and this script, and it must not be shown online again. Else 1 when SQL last_seen is due
-- (the touch flag throttles SQL writes to one per TTL per workspace), 0 when not.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return -1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
-- one extra check on the hottest path: back after being absent (or never seen) -> tell the dashboards
if ARGV[6] ~= '' then
  local last = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if not last or tonumber(last) < tonumber(ARGV[5]) then
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*',
               'id', '', 'kind', 'presence.online', 'data', ARGV[6])
    if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], KEYS[5]) end
  end
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) then
  return 1
end
return 0
