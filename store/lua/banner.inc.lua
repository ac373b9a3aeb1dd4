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
  local new = {}
  -- XLEN is 0 for a missing stream: an empty mailbox costs this one call
  local pending = redis.call('XLEN', k.mailbox)
  if pending > 0 then
    local read = redis.pcall('XREADGROUP', 'GROUP', a.group, a.consumer, 'COUNT', a.count,
                             'STREAMS', k.mailbox, '>')
    if type(read) == 'table' and read.err then  -- NOGROUP: the first read of this mailbox makes its group
      redis.call('XGROUP', 'CREATE', k.mailbox, a.group, '0')
      read = redis.call('XREADGROUP', 'GROUP', a.group, a.consumer, 'COUNT', a.count,
                        'STREAMS', k.mailbox, '>')
    end
    if a.seen ~= '' then
      new = redis.call('XRANGE', k.mailbox, '(' .. a.seen, '+', 'COUNT', a.count)
    elseif read and read[1] then
      -- Redis answers {{stream, entries}}; fakeredis (tests) answers {stream, entries}
      if type(read[1]) == 'table' then new = read[1][2] else new = read[2] end
    end
  end
  -- who waits on this workspace: one read when nobody does; expired waits are dropped when seen
  local now, waiters, expired = tonumber(a.now), {}, false
  local scored = redis.call('ZRANGE', k.waiting, 0, -1, 'WITHSCORES')
  for i = 1, #scored, 2 do
    if tonumber(scored[i + 1]) > now then waiters[#waiters + 1] = scored[i] else expired = true end
  end
  if expired then
    redis.call('ZREMRANGEBYSCORE', k.waiting, '-inf', a.now)
  end
  local waiting = {}
  if #waiters > 0 then
    waiting = redis.call('HMGET', k.waitinfo, unpack(waiters))
  end
  return {new, pending, waiting}
end
