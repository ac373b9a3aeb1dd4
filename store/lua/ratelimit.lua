-- ratelimit.lua: take one request from one or more GCRA buckets, all or none, in one round trip.
--
-- KEYS[i]  bucket (string)  e.g. <ns>:{p:<id>}:rl:key (project key), <ns>:{p:<id>}:rl:project,
--                           <ns>:rl:ip:<address>; value = the bucket's theoretical arrival time (s),
--                           PX = the time until it is full again (+1 s)
-- ARGV[1]  now (epoch seconds, float)
-- ARGV[2i], ARGV[2i+1]  bucket i: emission interval (s per request; 0 = no limit), tolerance (s: interval * burst)
--
-- Returns 0 when the request is allowed (every bucket took it), else the milliseconds until it
-- would be (no bucket is charged for a refused request). The same GCRA lives in heartbeat.lua,
-- which runs it for workspace tokens inside the heartbeat's round trip.
local now = tonumber(ARGV[1])
local tats, wait = {}, 0
for i = 1, #KEYS do
  local interval, tolerance = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if interval > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i])) or now
    if tat < now then tat = now end
    local new_tat = tat + interval
    wait = math.max(wait, new_tat - now - tolerance)
    tats[i] = new_tat
  end
end
if wait > 0 then
  return math.ceil(wait * 1000)
end
for i = 1, #KEYS do
  if tats[i] then
    redis.call('SET', KEYS[i], tostring(tats[i]), 'PX', math.ceil((tats[i] - now) * 1000) + 1000)
  end
end
return 0
