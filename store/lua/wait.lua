-- wait.lua: mark (or clear) that one workspace is blocked waiting for another's reply.
--
-- KEYS[1]  waiting zset    <ns>:{p:<id>}:waiting:<ws>       (ws = the one being waited on)
-- KEYS[2]  waiting hash    <ns>:{p:<id>}:waitinfo:<ws>
-- ARGV[1]  waiter workspace id
-- ARGV[2]  deadline (epoch seconds), or "0" to clear
-- ARGV[3]  JSON {alias, since} of the waiter (ignored when clearing)
--
-- Returns 1 when the waiter is now marked, 0 when cleared.
if ARGV[2] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
