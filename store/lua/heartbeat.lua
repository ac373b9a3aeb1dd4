-- heartbeat.lua: record that a workspace is alive and read its banner, in one round trip.
--
-- KEYS[1]  presence hash    <ns>:{p:<id>}:presence          field <ws> -> JSON (branch, host)
-- KEYS[2]  online zset      <ns>:{p:<id>}:online            member <ws>, score = now (seconds)
-- KEYS[3]  touch flag       <ns>:{p:<id>}:touch:<ws>        string, TTL ARGV[4]
-- KEYS[4]  mailbox stream   <ns>:{p:<id>}:mbox:<ws>         read through consumer group ARGV[5]
-- KEYS[5]  waiting zset     <ns>:{p:<id>}:waiting:<ws>      member <waiter ws>, score = deadline
-- KEYS[6]  waiting hash     <ns>:{p:<id>}:waitinfo:<ws>     field <waiter ws> -> JSON (alias, since)
-- KEYS[7]  epoch            <ns>:{p:<id>}:epoch             set by the rebuild once mailboxes are whole
-- KEYS[8]  rebuild flag     <ns>:{p:<id>}:rebuilding        string, TTL ARGV[8] (one request at a time)
-- ARGV[1]  workspace id      ARGV[2]  now (epoch seconds, float)   ARGV[3]  presence JSON
-- ARGV[4]  touch TTL (s)     ARGV[5]  consumer group               ARGV[6]  consumer name
-- ARGV[7]  most new mailbox entries to return                 ARGV[8]  rebuild flag TTL (s)
-- KEYS[9]  revoked set      <ns>:{p:<id>}:revoked           member <ws>: its token no longer works
-- KEYS[10] token bucket     <ns>:{p:<id>}:rl:ws:<ws>        GCRA, as ratelimit.lua
-- KEYS[11] project bucket   <ns>:{p:<id>}:rl:project        GCRA, as ratelimit.lua
-- ARGV[9], ARGV[10]   token bucket: emission interval (s; 0 = no limit), tolerance (s)
-- ARGV[11], ARGV[12]  project bucket: the same
-- KEYS[12] event stream     <ns>:{p:<id>}:events            gets `presence.online` (optional, see ARGV[14])
-- ARGV[13] beats older than this (epoch s) mean the workspace was offline
-- ARGV[14] payload JSON of the `presence.online` event, "" for none   ARGV[15] event stream MAXLEN ~
-- ARGV[16] the newest mailbox entry id the client confirms it has shown (header `X-Wire-Seen`), or ""
--          for a client that does not confirm (then each new entry is returned once, as it is read)
-- ARGV[17] wake channel <ns>:{p:<id>}:wake (Pub/Sub: gets the event stream's name when the event is added)
--
-- Before anything is written: {'revoked'} when the workspace is in the revoked set (a revocation
-- reaches every process at once, whatever their auth caches hold), {'limited', ms} when a bucket
-- is empty (ms until it is not; nothing is charged or refreshed).
-- Returns {touch, rebuild, new entries, pending count, waiting JSONs}:
--   touch    1 when SQL last_seen is due (throttles SQL writes to one per TTL per workspace)
--   rebuild  1 when the epoch is missing (new or flushed Redis: mailboxes must be rebuilt from SQL)
--            and no rebuild was requested within ARGV[8] s (so a failed rebuild is asked for again)
--   new      with ARGV[16]: the entries after that id, read or not, so an entry whose answer never
--            reached the client is shown again until a later call confirms it (at least once);
--            without: the entries never read before (at most once). Either way reading moves new
--            entries into the group's pending list, where the reminder sweep finds them
--            ([id, [field, value, ...]])
--   pending  entries not acknowledged, read or not (acked entries leave the stream): the unread count
--   waiting  JSON of each workspace blocked waiting for this one's reply
if redis.call('SISMEMBER', KEYS[9], ARGV[1]) == 1 then
  return {'revoked'}
end
local now, tats, wait = tonumber(ARGV[2]), {}, 0
for i = 0, 1 do  -- the GCRA of ratelimit.lua, for the token and the project buckets
  local interval, tolerance = tonumber(ARGV[9 + 2 * i]), tonumber(ARGV[10 + 2 * i])
  if interval > 0 then
    local tat = tonumber(redis.call('GET', KEYS[10 + i])) or now
    if tat < now then tat = now end
    tats[10 + i] = tat + interval
    wait = math.max(wait, tat + interval - now - tolerance)
  end
end
if wait > 0 then
  return {'limited', math.ceil(wait * 1000)}
end
for key, tat in pairs(tats) do
  redis.call('SET', KEYS[key], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
-- one extra check on the hottest path: back after being absent (or never seen) -> tell the dashboards
if ARGV[14] and ARGV[14] ~= '' then
  local last = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if not last or tonumber(last) < tonumber(ARGV[13]) then
    redis.call('XADD', KEYS[12], 'MAXLEN', '~', ARGV[15], '*', 'id', '', 'kind', 'presence.online', 'data', ARGV[14])
    if ARGV[17] and ARGV[17] ~= '' then redis.call('PUBLISH', ARGV[17], KEYS[12]) end
  end
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local touch = 0
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then
  touch = 1
end
local rebuild = 0
if redis.call('EXISTS', KEYS[7]) == 0 and redis.call('SET', KEYS[8], '1', 'NX', 'EX', ARGV[8]) then
  rebuild = 1
end
local new, pending = {}, 0
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.pcall('XGROUP', 'CREATE', KEYS[4], ARGV[5], '0')  -- BUSYGROUP once it exists: ignored
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[5], ARGV[6], 'COUNT', ARGV[7], 'STREAMS', KEYS[4], '>')
  if ARGV[16] and ARGV[16] ~= '' then
    new = redis.call('XRANGE', KEYS[4], '(' .. ARGV[16], '+', 'COUNT', ARGV[7])
  elseif read and read[1] then
    -- Redis answers {{stream, entries}}; fakeredis (tests) answers {stream, entries}
    if type(read[1]) == 'table' then new = read[1][2] else new = read[2] end
  end
  pending = redis.call('XLEN', KEYS[4])
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[2])
local waiters = redis.call('ZRANGE', KEYS[5], 0, -1)
local waiting = {}
if #waiters > 0 then
  waiting = redis.call('HMGET', KEYS[6], unpack(waiters))
end
return {touch, rebuild, new, pending, waiting}
