-- gcra.inc.lua: the GCRA bucket, a Lua function that ratelimit.lua and admit.inc.lua include (the
-- registry in store/redis/scripts.py puts this text before theirs: Redis has no `require`).
--
-- gcra_take(first, last, now, arg0): take one request from each bucket KEYS[first..last], all or none.
--   A bucket's value is its theoretical arrival time (s); its PX is the time until it is full again + 1 s.
--   Bucket KEYS[first + i] has emission interval ARGV[arg0 + 2i] (s per request; 0 = no limit) and
--   tolerance ARGV[arg0 + 2i + 1] (s: interval * burst).
-- Returns 0 when every bucket took the request (written), else the milliseconds until it would be
-- (then no bucket is charged).
local function gcra_take(first, last, now, arg0)
  local tats, wait, limited = {}, 0, {}
  for i = first, last do
    if tonumber(ARGV[arg0 + 2 * (i - first)]) > 0 then limited[#limited + 1] = KEYS[i] end
  end
  -- every bucket's value in one call (one per bucket cost ~5 us each on every request)
  local stored = #limited > 0 and redis.call('MGET', unpack(limited)) or {}
  local n = 0
  for i = first, last do
    local j = arg0 + 2 * (i - first)
    local interval, tolerance = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
    if interval > 0 then
      n = n + 1
      local tat = tonumber(stored[n]) or now
      if tat < now then tat = now end
      local new_tat = tat + interval
      wait = math.max(wait, new_tat - now - tolerance)
      tats[i] = new_tat
    end
  end
  if wait > 0 then
    return math.ceil(wait * 1000)
  end
  for i = first, last do
    if tats[i] then
      redis.call('SET', KEYS[i], tostring(tats[i]), 'PX', math.ceil((tats[i] - now) * 1000) + 1000)
    end
  end
  return 0
end
