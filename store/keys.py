"""Every Redis key beadwire uses, built here and nowhere else.

Each key carries the project in a hash tag (`{p:<id>}`) so every multi-key operation of one
project lands in one Redis Cluster slot. `ns` is `Settings.namespace` (default `bw`).

Each key: its type, who writes it (its owner), and how long it lives.

- `<ns>:{p:<id>}:presence` hash, heartbeat.lua (presence.inc.lua): no TTL; fields pruned by the sweep.
- `<ns>:{p:<id>}:online` zset, heartbeat.lua (presence.inc.lua): no TTL; score = last beat (s).
- `<ns>:{p:<id>}:touch:<ws>` string, heartbeat.lua (presence.inc.lua): 60 s (throttles SQL last_seen).
- `<ns>:{p:<id>}:events` stream, publish.lua: MAXLEN ~ 10000.
- `<ns>:{p:<id>}:mbox:<ws>` stream, publish.lua: no TTL; entries leave on ack.
- `<ns>:{p:<id>}:mbox:<ws>:ids` hash, publish/ack.lua: no TTL; delivery id -> entry id.
- `<ns>:{p:<id>}:seen:<outbox id>` string, publish.lua: 7 days (delivery dedupe).
- `<ns>:{p:<id>}:waiting:<ws>` zset, wait.lua: no TTL; score = deadline, pruned by heartbeat.lua.
- `<ns>:{p:<id>}:waitinfo:<ws>` hash, wait.lua: no TTL; waiter -> {alias, since}.
- `<ns>:{p:<id>}:epoch` string, the rebuild (messages.py): no TTL; absent = rebuild mailboxes from SQL.
- `<ns>:{p:<id>}:rebuilding` string, heartbeat.lua (rebuild.inc.lua): 30 s (a rebuild was requested).
- `<ns>:{p:<id>}:revoked` set, revoke.lua: no TTL; revoked workspace ids (heartbeat.lua refuses
  them, admit.inc.lua).
- `<ns>:{p:<id>}:rl:ws:<ws>` string, heartbeat.lua: until the bucket is full again + 1 s; GCRA arrival
  time (s).
- `<ns>:{p:<id>}:rl:project` string, heartbeat/ratelimit.lua: the same, for the whole project.
- `<ns>:{p:<id>}:rl:key` string, ratelimit.lua: the same, for calls with the project key.
- `<ns>:rl:ip:<address>` string, ratelimit.lua: the same, per client address (unauthenticated routes).
- `<ns>:sweep:<name>` string, RedisStore.try_lock: the sweep's period (one runner per period).
- `<ns>:metrics` hash, store/redis/stats.py: no TTL; request counters of every process (HINCRBY deltas).
- `<ns>:{p:<id>}:res:<repo>` hash, reserve/autoreserve/unreserve/expire.lua: field `<ws>\\0<pattern>` ->
  entry JSON; the key expires with its last entry + grace.
- `<ns>:{p:<id>}:resexp:<repo>` zset, the same scripts: member = field of `res`, score = expiry (s); same
  TTL as `res`.
- `<ns>:{p:<id>}:login:<sha256>` string, store/sessions.py: 600 s; one-time dashboard login link -> JSON
  (access, by); GETDEL.
- `<ns>:{p:<id>}:session:<sha256>` string, store/sessions.py: idle timeout, renewed on use; dashboard
  session -> JSON (access, csrf, created; a person's: `human` row id, re-checked each request, and `as`,
  the membership shown).
- `<ns>:{p:<id>}:waiters` zset, enter.lua (store/waiters.py): no TTL; member = lease id, score = lease
  expiry (s); the project's held waiters.
- `<ns>:{p:<id>}:waiters:<owner>` zset, enter.lua (store/waiters.py): the same, for one credential
  (`w<ws>`, `key`, `s<session digest>`).
- `<ns>:{p:<id>}:idle` hash, store/gitstate.py (idle sweep): no TTL; field <ws> -> start of the idle
  spell the coordinators were told of; dropped once the holder is active.

Pub/Sub channel (not a key): `<ns>:{p:<id>}:wake` carries, as its message, the name of a stream of the
project that just got an entry (publish.lua, heartbeat.lua, reclaim.lua, `RedisStore.add_event`), so
waiters blocked on that stream wake up (store/wakeups.py).

The mailbox consumer group is `inbox` (`MAILBOX_GROUP`). Dramatiq's own keys live under
`broker_namespace()`: `<ns>:dramatiq` on one Redis, `{<ns>:dramatiq}` on a Redis Cluster, whose hash
tag keeps every queue key (and the broker's Lua, which derives them from the namespace) in one slot.
"""

from __future__ import annotations

#: Consumer group through which each workspace reads its mailbox.
MAILBOX_GROUP = "inbox"


class Keys:
    """Key builders for one namespace."""

    def __init__(self, namespace: str = "bw") -> None:
        self.ns = namespace

    def _p(self, project_id: int) -> str:
        return f"{self.ns}:{{p:{project_id}}}"

    def presence_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:presence"

    def online_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:online"

    def touch_key(self, project_id: int, workspace_id: int) -> str:
        return f"{self._p(project_id)}:touch:{workspace_id}"

    def events_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:events"

    def mailbox_key(self, project_id: int, workspace_id: int) -> str:
        return f"{self._p(project_id)}:mbox:{workspace_id}"

    def mailbox_index_key(self, project_id: int, workspace_id: int) -> str:
        return f"{self._p(project_id)}:mbox:{workspace_id}:ids"

    def delivered_key(self, project_id: int, outbox_id: int) -> str:
        return f"{self._p(project_id)}:seen:{outbox_id}"

    def waiting_key(self, project_id: int, workspace_id: int) -> str:
        return f"{self._p(project_id)}:waiting:{workspace_id}"

    def waitinfo_key(self, project_id: int, workspace_id: int) -> str:
        return f"{self._p(project_id)}:waitinfo:{workspace_id}"

    def broker_namespace(self, cluster: bool = False) -> str:
        return f"{{{self.ns}:dramatiq}}" if cluster else f"{self.ns}:dramatiq"

    def broker_queue_key(self, queue: str, cluster: bool = False) -> str:
        """The hash of a Dramatiq queue's messages (queued and in flight), e.g. queue `default`."""
        return f"{self.broker_namespace(cluster)}:{queue}.msgs"

    def metrics_key(self) -> str:
        return f"{self.ns}:metrics"

    def revoked_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:revoked"

    def token_bucket_key(self, project_id: int, workspace_id: int) -> str:
        return f"{self._p(project_id)}:rl:ws:{workspace_id}"

    def project_bucket_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:rl:project"

    def key_bucket_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:rl:key"

    def ip_bucket_key(self, address: str) -> str:
        return f"{self.ns}:rl:ip:{address}"

    def sweep_lock_key(self, name: str) -> str:
        return f"{self.ns}:sweep:{name}"

    def rebuilding_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:rebuilding"

    def epoch_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:epoch"

    def login_key(self, project_id: int, digest: str) -> str:
        return f"{self._p(project_id)}:login:{digest}"

    def session_key(self, project_id: int, digest: str) -> str:
        return f"{self._p(project_id)}:session:{digest}"

    def reservations_key(self, project_id: int, repo_id: int) -> str:
        return f"{self._p(project_id)}:res:{repo_id}"

    def reservation_expiry_key(self, project_id: int, repo_id: int) -> str:
        return f"{self._p(project_id)}:resexp:{repo_id}"

    def waiters_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:waiters"

    def owner_waiters_key(self, project_id: int, owner: str) -> str:
        return f"{self._p(project_id)}:waiters:{owner}"

    def idle_noticed_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:idle"

    def wake_channel(self, project_id: int) -> str:
        """The Pub/Sub channel announcing new entries in the project's streams (not a key)."""
        return f"{self._p(project_id)}:wake"
