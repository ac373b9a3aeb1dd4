-- reserve.lua: set or renew one workspace's reservations and read everyone else's, in one step.
--
-- KEYS[1]  reservations   <ns>:{p:<id>}:res:<repo>      hash  field "<ws>\0<pattern>" -> entry JSON
-- KEYS[2]  expiries       <ns>:{p:<id>}:resexp:<repo>   zset  member = field, score = expiry (epoch s)
-- ARGV[1]  now (epoch seconds, float)
-- ARGV[2]  grace (s): entries that expired longer ago than this are dropped here (the sweep missed them)
-- ARGV[3]  the caller's field prefix "<ws>\0"
-- ARGV[4..] triples: field, entry JSON, expiry
--
-- Returns the entry JSON of every live reservation of the other workspaces (the caller decides which
-- overlap). Both keys expire `grace` seconds after their last entry does: an idle repo leaves nothing.
local now, grace, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - grace))) do
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
end
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
end
local others = {}
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')) do
  if string.sub(field, 1, #prefix) ~= prefix then
    local entry = redis.call('HGET', KEYS[1], field)
    if entry then
      others[#others + 1] = entry
    end
  end
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  local ms = math.ceil((tonumber(last[2]) - now + grace) * 1000)
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[2], ms)
end
return others
