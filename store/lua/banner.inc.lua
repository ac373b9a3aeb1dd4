-- banner.inc.lua: read a workspace's banner: its new mailbox entries, its unread count, who waits on it.
--
-- read_banner(k, a), k: the keys, a: the values
--   k.mailbox   mailbox stream  <ns>:{p:<id>}:mbox:<ws>       read through consumer group a.group
--   k.waiting   waiting zset    <ns>:{p:<id>}:waiting:<ws>    member <waiter ws>, score = deadline
--   k.waitinfo  waiting hash    <ns>:{p:<id>}:waitinfo:<ws>   field <waiter ws> -> JSON (alias, since)
--   a.group, a.consumer (consumer name), a.count (most new mailbox entries to return)
--   a.seen  the newest mailbox entry id the client confirms it has shown (header `X-Wire-Seen`), or ""
--           for a client that does not confirm (then each new entry is returned once, as it is read)
--   a.now   epoch seconds: waits whose deadline passed are dropped
--
-- Returns {new entries, pending count, waiting JSONs}:
--   new      with a.seen: the entries after that id, read or not, so an entry whose answer never
--            reached the client is shown again until a later call confirms it (at least once);
--            without: the entries never read before (at most once). Either way reading moves new
--            entries into the group's pending list, where the reminder sweep finds them
--            ([id, [field, value, ...]])
--   pending  entries not acknowledged, read or not (acked entries leave the stream): the unread count
--   waiting  JSON of each workspace blocked waiting for this one's reply
local function read_banner(k, a)
  local new, pending = {}, 0
  if redis.call('EXISTS', k.mailbox) == 1 then
    redis.pcall('XGROUP', 'CREATE', k.mailbox, a.group, '0')  -- BUSYGROUP once it exists: ignored
    local read = redis.call('XREADGROUP', 'GROUP', a.group, a.consumer, 'COUNT', a.count,
                            'STREAMS', k.mailbox, '>')
    if a.seen ~= '' then
      new = redis.call('XRANGE', k.mailbox, '(' .. a.seen, '+', 'COUNT', a.count)
    elseif read and read[1] then
      -- Redis answers {{stream, entries}}; fakeredis (tests) answers {stream, entries}
      if type(read[1]) == 'table' then new = read[1][2] else new = read[2] end
    end
    pending = redis.call('XLEN', k.mailbox)
  end
  redis.call('ZREMRANGEBYSCORE', k.waiting, '-inf', a.now)
  local waiters = redis.call('ZRANGE', k.waiting, 0, -1)
  local waiting = {}
  if #waiters > 0 then
    waiting = redis.call('HMGET', k.waitinfo, unpack(waiters))
  end
  return {new, pending, waiting}
end
