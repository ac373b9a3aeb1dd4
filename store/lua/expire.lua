-- expire.lua: take the reservations of one repo whose lease has run out (the expiry sweep).
--
-- KEYS[1]  reservations   <ns>:{p:<id>}:res:<repo>      hash  field "<ws>\0<pattern>" -> entry JSON
-- KEYS[2]  expiries       <ns>:{p:<id>}:resexp:<repo>   zset  member = field, score = expiry (epoch s)
-- ARGV[1]  now (epoch seconds, float)
-- ARGV[2]  most entries to take in this call
--
-- Returns the entry JSON of each entry removed (expiry at or before now); each is returned once,
-- so concurrent sweeps never report one expiry twice.
local fields = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local gone = {}
for _, field in ipairs(fields) do
  local entry = redis.call('HGET', KEYS[1], field)
  if entry then
    gone[#gone + 1] = entry
    redis.call('HDEL', KEYS[1], field)
  end
  redis.call('ZREM', KEYS[2], field)
end
return gone
