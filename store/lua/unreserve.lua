-- unreserve.lua: release reservations of one workspace.
--
-- KEYS[1]  reservations   <ns>:{p:<id>}:res:<repo>      hash  field "<ws>\0<pattern>" -> entry JSON
-- KEYS[2]  expiries       <ns>:{p:<id>}:resexp:<repo>   zset  member = field, score = expiry (epoch s)
-- ARGV[1]  the caller's field prefix "<ws>\0"
-- ARGV[2..] fields to release; none releases every entry of the caller
--
-- Returns the entry JSON of each entry removed (expired ones included: the caller filters them).
local fields = {}
if #ARGV == 1 then
  for _, field in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if string.sub(field, 1, #ARGV[1]) == ARGV[1] then
      fields[#fields + 1] = field
    end
  end
else
  for i = 2, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
end
local released = {}
for _, field in ipairs(fields) do
  local entry = redis.call('HGET', KEYS[1], field)
  if entry then
    released[#released + 1] = entry
    redis.call('HDEL', KEYS[1], field)
  end
  redis.call('ZREM', KEYS[2], field)
end
return released
