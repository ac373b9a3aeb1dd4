-- heartbeat.lua: record that a workspace is alive, in one round trip.
--
-- KEYS[1]  presence hash   <ns>:{p:<id>}:presence      field <ws> -> JSON (branch, host, ...)
-- KEYS[2]  online zset     <ns>:{p:<id>}:online        member <ws>, score = now (seconds)
-- KEYS[3]  touch flag      <ns>:{p:<id>}:touch:<ws>    string with TTL ARGV[4]
-- ARGV[1]  workspace id
-- ARGV[2]  now, epoch seconds (float)
-- ARGV[3]  presence JSON
-- ARGV[4]  touch TTL in seconds
--
-- Returns 1 when the touch flag was absent (the caller should persist last_seen to SQL, which
-- throttles SQL writes to one per TTL per workspace), else 0.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then
  return 1
end
return 0
