-- revoke.lua: a workspace's token stops working at once in every web process, and it goes offline.
--
-- KEYS[1]  revoked set      <ns>:{p:<id>}:revoked           member <ws>; heartbeat.lua refuses it
-- KEYS[2]  presence hash    <ns>:{p:<id>}:presence          field <ws> removed
-- KEYS[3]  online zset      <ns>:{p:<id>}:online            member <ws> removed
-- ARGV[1]  workspace id
--
-- Returns 1 when the workspace was not in the revoked set before, else 0.
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('SADD', KEYS[1], ARGV[1])
