-- publish.lua: deliver one outbox row into the project event stream and/or a mailbox, once.
--
-- KEYS[1]  dedupe flag     <ns>:{p:<id>}:seen:<outbox id>   string, TTL ARGV[5]
-- KEYS[2]  event stream    <ns>:{p:<id>}:events
-- KEYS[3]  mailbox stream  <ns>:{p:<id>}:mbox:<ws>          (used when ARGV[7] is not "")
-- KEYS[4]  mailbox index   <ns>:{p:<id>}:mbox:<ws>:ids      hash delivery id -> stream entry id
-- ARGV[1]  outbox id (the stable delivery id readers deduplicate on)
-- ARGV[2]  kind            ARGV[3]  payload JSON
-- ARGV[4]  approximate MAXLEN of the event stream            ARGV[5]  dedupe TTL in seconds
-- ARGV[6]  "1" to add the row to the event stream
-- ARGV[7]  delivery id when the row goes to a mailbox, else ""
-- ARGV[8]  wake channel    <ns>:{p:<id>}:wake  (Pub/Sub; gets the name of each stream written, so
--          waiters blocked on it wake up: store/wakeups.py); absent or "" publishes nothing. A mailbox's
--          name comes with the entry added: "<stream>\n<entry id>\n<ARGV[7]>\n<kind>\n<payload>", so
--          its waiter need not read the stream again; a payload over CARRY_MAX bytes is not copied to
--          every subscribed process (the name alone: its waiter reads the stream)
--
-- Returns 1 when delivered now, 0 when this outbox id was delivered before (idempotent retry).
-- Mailboxes are never trimmed: entries leave them only when acknowledged (ack.lua).
local CARRY_MAX = 8192
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then
  return 0
end
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'kind', ARGV[2], 'data', ARGV[3])
  if ARGV[8] and ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], KEYS[2]) end
end
if ARGV[7] ~= '' then
  local sid = redis.call('XADD', KEYS[3], '*', 'id', ARGV[7], 'kind', ARGV[2], 'data', ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[7], sid)
  if ARGV[8] and ARGV[8] ~= '' and #ARGV[3] <= CARRY_MAX then
    redis.call('PUBLISH', ARGV[8], KEYS[3] .. '\n' .. sid .. '\n' .. ARGV[7] .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
  elseif ARGV[8] and ARGV[8] ~= '' then
    redis.call('PUBLISH', ARGV[8], KEYS[3])
  end
end
return 1
