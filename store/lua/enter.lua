-- enter.lua: take a waiter slot (a websocket, a `watch` or a chat wait being held), within the caps.
--
-- KEYS[1]  project waiters  <ns>:{p:<id>}:waiters           zset member = lease id, score = expiry (s)
-- KEYS[2]  owner waiters    <ns>:{p:<id>}:waiters:<owner>   the same, for one credential
-- ARGV[1]  now (epoch seconds)   ARGV[2]  lease id   ARGV[3]  lease expiry (epoch seconds)
-- ARGV[4]  most waiters of the owner (0 = no cap)   ARGV[5]  most waiters of the project (0 = no cap)
--
-- Leases that expired (their holder died without leaving) are dropped first, so a crashed process
-- frees its slots within one lease. Returns 1 when the slot was taken (the lease is in both sets),
-- -1 when the owner is at its cap, -2 when the project is; nothing is written then.
-- Leaving is ZREM from both sets; holding longer is ZADD XX with a later expiry (store/waiters.py).
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local owner_cap, project_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
if owner_cap > 0 and redis.call('ZCARD', KEYS[2]) >= owner_cap then
  return -1
end
if project_cap > 0 and redis.call('ZCARD', KEYS[1]) >= project_cap then
  return -2
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
