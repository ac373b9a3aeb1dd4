-- heartbeat.lua: one authenticated call's heartbeat, atomic, in one round trip: admit it (revocation,
-- rate buckets), then mark it alive, see whether the mailboxes need a rebuild, and read its banner.
-- Each step is a function of its own include file (admit, presence, rebuild, banner .inc.lua).
--
-- KEYS[1]  revoked set      <ns>:{p:<id>}:revoked           member <ws>: its token no longer works
-- KEYS[2]  token bucket     <ns>:{p:<id>}:rl:ws:<ws>        GCRA (gcra.inc.lua)
-- KEYS[3]  project bucket   <ns>:{p:<id>}:rl:project        GCRA (gcra.inc.lua)
-- KEYS[4]  presence hash    <ns>:{p:<id>}:presence          field <ws> -> JSON (branch, host, alias, git)
-- KEYS[5]  online zset      <ns>:{p:<id>}:online            member <ws>, score = now (seconds)
-- KEYS[6]  touch flag       <ns>:{p:<id>}:touch:<ws>        string, TTL ARGV[8]
-- KEYS[7]  event stream     <ns>:{p:<id>}:events            gets `presence.online` (see ARGV[10])
-- KEYS[8]  epoch            <ns>:{p:<id>}:epoch             set by the rebuild once mailboxes are whole
-- KEYS[9]  rebuild flag     <ns>:{p:<id>}:rebuilding        string, TTL ARGV[13]
-- KEYS[10] mailbox stream   <ns>:{p:<id>}:mbox:<ws>         read through consumer group ARGV[14]
-- KEYS[11] waiting zset     <ns>:{p:<id>}:waiting:<ws>      member <waiter ws>, score = deadline
-- KEYS[12] waiting hash     <ns>:{p:<id>}:waitinfo:<ws>     field <waiter ws> -> JSON (alias, since)
-- ARGV[1]  workspace id     ARGV[2]  now (epoch seconds, float)
-- ARGV[3], ARGV[4]  token bucket: emission interval (s; 0 = no limit), tolerance (s)
-- ARGV[5], ARGV[6]  project bucket: the same
-- ARGV[7]  presence JSON    ARGV[8]  touch TTL (s)
-- ARGV[9]  beats older than this (epoch s) mean the workspace was offline
-- ARGV[10] payload JSON of the `presence.online` event, "" for none   ARGV[11] event stream MAXLEN ~
-- ARGV[12] wake channel <ns>:{p:<id>}:wake, "" for none   ARGV[13] rebuild flag TTL (s)
-- ARGV[14] consumer group   ARGV[15] consumer name   ARGV[16] most new mailbox entries to return
-- ARGV[17] the newest mailbox entry id the client confirms it has shown, or "" (banner.inc.lua)
--
-- Returns {verdict} when refused, and then nothing was written: -1 (revoked) or the milliseconds
-- until the buckets would take the call. Else {0, touch, rebuild, {new, pending, waiting}}: touch 1
-- when SQL last_seen is due, rebuild 1 when this caller should ask for the mailboxes to be rebuilt,
-- and the banner (banner.inc.lua).
local ws, now = ARGV[1], tonumber(ARGV[2])
local verdict = admit(KEYS[1], ws, now, 2, 3, 3)
if verdict ~= 0 then
  return {verdict}
end
local touch = mark_alive(
  {presence = KEYS[4], online = KEYS[5], touch = KEYS[6], events = KEYS[7]},
  {ws = ws, now = ARGV[2], fields = ARGV[7], touch_ttl = ARGV[8], offline_before = ARGV[9],
   online_event = ARGV[10], maxlen = ARGV[11], wake = ARGV[12]})
local rebuild = rebuild_due(KEYS[8], KEYS[9], ARGV[13])
local banner = read_banner(
  {mailbox = KEYS[10], waiting = KEYS[11], waitinfo = KEYS[12]},
  {group = ARGV[14], consumer = ARGV[15], count = ARGV[16], seen = ARGV[17], now = ARGV[2]})
return {0, touch, rebuild, banner}
