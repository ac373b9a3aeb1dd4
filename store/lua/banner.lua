-- banner.lua: read a workspace's banner: its new mailbox entries, its unread count, who waits on it.
--
-- KEYS[1]  mailbox stream   <ns>:{p:<id>}:mbox:<ws>         read through consumer group ARGV[1]
-- KEYS[2]  waiting zset     <ns>:{p:<id>}:waiting:<ws>      member <waiter ws>, score = deadline
-- KEYS[3]  waiting hash     <ns>:{p:<id>}:waitinfo:<ws>     field <waiter ws> -> JSON (alias, since)
-- ARGV[1]  consumer group   ARGV[2]  consumer name   ARGV[3]  most new mailbox entries to return
-- ARGV[4]  the newest mailbox entry id the client confirms it has shown (header `X-Wire-Seen`), or ""
--          for a client that does not confirm (then each new entry is returned once, as it is read)
-- ARGV[5]  now (epoch seconds, float): waits whose deadline passed are dropped
--
-- Returns {new entries, pending count, waiting JSONs}:
--   new      with ARGV[4]: the entries after that id, read or not, so an entry whose answer never
--            reached the client is shown again until a later call confirms it (at least once);
--            without: the entries never read before (at most once). Either way reading moves new
--            entries into the group's pending list, where the reminder sweep finds them
--            ([id, [field, value, ...]])
--   pending  entries not acknowledged, read or not (acked entries leave the stream): the unread count
--   waiting  JSON of each workspace blocked waiting for this one's reply
local new, pending = {}, 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')  -- BUSYGROUP once it exists: ignored
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
  if ARGV[4] ~= '' then
    new = redis.call('XRANGE', KEYS[1], '(' .. ARGV[4], '+', 'COUNT', ARGV[3])
  elseif read and read[1] then
    -- Redis answers {{stream, entries}}; fakeredis (tests) answers {stream, entries}
    if type(read[1]) == 'table' then new = read[1][2] else new = read[2] end
  end
  pending = redis.call('XLEN', KEYS[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
local waiters = redis.call('ZRANGE', KEYS[2], 0, -1)
local waiting = {}
if #waiters > 0 then
  waiting = redis.call('HMGET', KEYS[3], unpack(waiters))
end
return {new, pending, waiting}
