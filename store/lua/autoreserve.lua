-- autoreserve.lua: make one workspace's automatic reservations match the files it has modified, and
-- return the other workspaces' reservations that may overlap them, in one step (runs per request).
--
-- KEYS[1]  reservations   <ns>:{p:<id>}:res:<repo>      hash  field "<ws>\0<pattern>" -> entry JSON
-- KEYS[2]  expiries       <ns>:{p:<id>}:resexp:<repo>   zset  member = field, score = expiry (epoch s)
-- ARGV[1]  now (epoch seconds, float)
-- ARGV[2]  grace (s): entries that expired longer ago than this are dropped here (the sweep missed them)
-- ARGV[3]  the caller's field prefix "<ws>\0"
-- ARGV[4]  expiry of the entries written now
-- ARGV[5]  "1" when the list is complete: the caller's automatic entries not in it are released
-- ARGV[6..] pairs: pattern, entry JSON (its field is ARGV[3] .. pattern)
--
-- A live explicit (not automatic) entry of the caller on the same pattern is left as it is: it wins.
-- Returns three lists:
--   1. the entry JSON of the other workspaces' live reservations that pass a cheap pre-filter (a
--      literal pattern equal to, inside or above one of ARGV's; a glob whose literal head and the head
--      of one of ARGV's are prefixes one of the other). The exact overlap is decided by the caller.
--   2. the patterns reserved now that the caller did not hold live before (renewals are not listed),
--   3. the patterns of the caller's live automatic entries released now,
-- so the caller announces changes only: the same list arrives with nearly every CLI call.
local now, grace, prefix, expiry = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - grace))) do
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
end

-- the literal head of a pattern (up to its first wildcard), and whether it has one
local function head(p)
  local i = string.find(p, '[%*%?%[]')
  if i then
    return string.sub(p, 1, i - 1), true
  end
  return p, false
end
local function compatible(a, b)
  if #a <= #b then
    return string.sub(b, 1, #a) == a
  end
  return string.sub(a, 1, #b) == b
end
-- calls fn with every proper directory prefix of a path ("a", "a/b" for "a/b/c"); true when fn is
local function any_parent(p, fn)
  local s = 1
  while true do
    local j = string.find(p, '/', s, true)
    if not j then
      return false
    end
    if fn(string.sub(p, 1, j - 1)) then
      return true
    end
    s = j + 1
  end
end

local wanted, literal, around, glob_heads, all_heads = {}, {}, {}, {}, {}
for i = 6, #ARGV, 2 do
  local p = ARGV[i]
  wanted[prefix .. p] = true
  local h, glob = head(p)
  all_heads[#all_heads + 1] = h
  if glob then
    glob_heads[#glob_heads + 1] = h
  else
    literal[p] = true
    around[p] = true
    any_parent(p, function(d) around[d] = true end)
  end
end
local function candidate(p)
  local h, glob = head(p)
  local heads = all_heads
  if not glob then
    if around[p] or any_parent(p, function(d) return literal[d] end) then
      return true
    end
    heads = glob_heads
  end
  for _, mine in ipairs(heads) do
    if compatible(h, mine) then
      return true
    end
  end
  return false
end

local own, others = {}, {}
local members = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local field, score = members[i], tonumber(members[i + 1])
  if string.sub(field, 1, #prefix) == prefix then
    own[field] = score
  elseif score > now then
    local sep = string.find(field, '\0', 1, true)
    if sep and candidate(string.sub(field, sep + 1)) then
      others[#others + 1] = field
    end
  end
end
local added, released = {}, {}
for i = 6, #ARGV, 2 do
  local field = prefix .. ARGV[i]
  local live = own[field] and own[field] > now
  local keep = false
  if live then
    local current = redis.call('HGET', KEYS[1], field)
    keep = current and not cjson.decode(current).auto
  end
  if not keep then
    redis.call('HSET', KEYS[1], field, ARGV[i + 1])
    redis.call('ZADD', KEYS[2], expiry, field)
    if not live then
      added[#added + 1] = ARGV[i]
    end
  end
end
if ARGV[5] == '1' then
  for field, score in pairs(own) do
    if not wanted[field] then
      local current = redis.call('HGET', KEYS[1], field)
      if current and cjson.decode(current).auto then
        redis.call('HDEL', KEYS[1], field)
        redis.call('ZREM', KEYS[2], field)
        if score > now then
          released[#released + 1] = string.sub(field, #prefix + 1)
        end
      end
    end
  end
end

local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  local ms = math.ceil((tonumber(last[2]) - now + grace) * 1000)
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[2], ms)
end
local found = {}
for _, field in ipairs(others) do
  local entry = redis.call('HGET', KEYS[1], field)
  if entry then
    found[#found + 1] = entry
  end
end
table.sort(released)  -- pairs() order is unspecified
return {found, added, released}
