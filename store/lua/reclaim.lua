-- reclaim.lua: re-deliver mailbox entries shown but left unread for too long, once each.
--
-- KEYS[1]  mailbox stream  <ns>:{p:<id>}:mbox:<ws>
-- KEYS[2]  mailbox index   <ns>:{p:<id>}:mbox:<ws>:ids      hash delivery id -> stream entry id
-- ARGV[1]  consumer group   ARGV[2]  consumer name   ARGV[3]  min idle (ms)   ARGV[4]  most entries
-- ARGV[5]  wake channel <ns>:{p:<id>}:wake (Pub/Sub: gets the mailbox's name when entries came back)
--
-- XAUTOCLAIM takes the pending entries idle longer than ARGV[3]; each one not reminded before is
-- acked, removed and added again (fields kept, plus `reminded`=1) so the next banner shows it as
-- new, and the index points at its new id. Reminded entries stay pending: one reminder, no nagging.
-- Returns how many entries were re-delivered.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local ok, claimed = pcall(redis.call, 'XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0',
                          'COUNT', ARGV[4])
if not ok then
  return 0  -- NOGROUP: nothing was ever read from this mailbox
end
local again = 0
for _, entry in ipairs(claimed[2]) do
  local sid, fields = entry[1], entry[2]
  local reminded, delivery = false, nil
  for i = 1, #fields, 2 do
    if fields[i] == 'reminded' then reminded = true end
    if fields[i] == 'id' then delivery = fields[i + 1] end
  end
  if not reminded and delivery then
    redis.call('XACK', KEYS[1], ARGV[1], sid)
    redis.call('XDEL', KEYS[1], sid)
    table.insert(fields, 'reminded')
    table.insert(fields, '1')
    local new = redis.call('XADD', KEYS[1], '*', unpack(fields))
    redis.call('HSET', KEYS[2], delivery, new)
    again = again + 1
  end
end
if again > 0 and ARGV[5] and ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], KEYS[1])
end
return again
