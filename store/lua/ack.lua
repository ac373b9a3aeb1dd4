-- ack.lua: acknowledge mailbox entries by delivery id and drop them from the mailbox.
--
-- KEYS[1]  mailbox stream  <ns>:{p:<id>}:mbox:<ws>
-- KEYS[2]  mailbox index   <ns>:{p:<id>}:mbox:<ws>:ids      hash delivery id -> stream entry id
-- ARGV[1]  consumer group
-- ARGV[2..] delivery ids
--
-- Returns how many entries were found and acknowledged (0 for unknown or already acked ids).
local acked = 0
for i = 2, #ARGV do
  local sid = redis.call('HGET', KEYS[2], ARGV[i])
  if sid then
    redis.pcall('XACK', KEYS[1], ARGV[1], sid)  -- NOGROUP when never read: nothing pending then
    redis.call('XDEL', KEYS[1], sid)
    redis.call('HDEL', KEYS[2], ARGV[i])
    acked = acked + 1
  end
end
return acked
