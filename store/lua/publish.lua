-- publish.lua: deliver one outbox row into the project event stream (and a mailbox), once.
--
-- KEYS[1]  dedupe flag     <ns>:{p:<id>}:seen:<outbox id>   string, TTL ARGV[5]
-- KEYS[2]  event stream    <ns>:{p:<id>}:events
-- KEYS[3]  mailbox stream  <ns>:{p:<id>}:mbox:<ws>  (optional: absent when no recipient)
-- ARGV[1]  outbox id (the stable delivery id readers deduplicate on)
-- ARGV[2]  kind
-- ARGV[3]  payload JSON
-- ARGV[4]  approximate MAXLEN of each stream
-- ARGV[5]  dedupe TTL in seconds
--
-- Returns 1 when delivered now, 0 when this outbox id was delivered before (idempotent retry).
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'kind', ARGV[2], 'data', ARGV[3])
if KEYS[3] then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'kind', ARGV[2], 'data', ARGV[3])
end
return 1
