-- reserve.lua: set or renew one workspace's reservations and read everyone else's, in one step.
--
-- KEYS[1]  reservations   <ns>:{p:<id>}:res:<repo>      hash  field "<ws>\0<pattern>" -> entry JSON
-- KEYS[2]  expiries       <ns>:{p:<id>}:resexp:<repo>   zset  member = field, score = expiry (epoch s)
-- ARGV[1]  now (epoch seconds, float)
-- ARGV[2]  grace (s): entries that expired longer ago than this are dropped here (the sweep missed them)
-- ARGV[3]  the caller's field prefix "<ws>\0"
-- ARGV[4..] triples: field, entry JSON, expiry
--
-- A renewal keeps what it does not restate: an entry with no reason ("") or no bead (null) that
-- replaces a live explicit (not automatic) entry of the same field takes that entry's reason or bead.
-- Returns two lists: the entry JSON of every live reservation of the other workspaces (the caller
-- decides which overlap), and the entry JSON written for each triple, in ARGV order. Both keys
-- expire `grace` seconds after their last entry does: an idle repo leaves nothing.
local now, grace, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - grace))) do
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
end
local function none(v)
  return v == nil or v == cjson.null
end
-- the entry to write for field: `entry`, with the reason and bead of the live one it renews if it has none
local function renewed(field, entry)
  local current, expiry = redis.call('HGET', KEYS[1], field), redis.call('ZSCORE', KEYS[2], field)
  if not current or not expiry or tonumber(expiry) <= now then
    return entry
  end
  local new, old = cjson.decode(entry), cjson.decode(current)
  local reason, bead = (new.reason or '') == '' and not none(old.reason) and old.reason ~= '',
                       none(new.bead) and not none(old.bead)
  if old.auto or not (reason or bead) then
    return entry
  end
  if reason then new.reason = old.reason end
  if bead then new.bead = old.bead end
  return cjson.encode(new)
end
local written = {}
for i = 4, #ARGV, 3 do
  local entry = renewed(ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[1], ARGV[i], entry)
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
  written[#written + 1] = entry
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
return {others, written}
