"""Every Redis key beadwire uses, built here and nowhere else.

Each key carries the project in a hash tag (`{p:<id>}`) so every multi-key operation of one
project lands in one Redis Cluster slot. `ns` is `Settings.namespace` (default `bw`).

| key                               | type   | owner            | TTL                        |
|-----------------------------------|--------|------------------|----------------------------|
| `<ns>:{p:<id>}:presence`          | hash   | heartbeat.lua    | none; fields pruned by sweep |
| `<ns>:{p:<id>}:online`            | zset   | heartbeat.lua    | none; score = last beat (s) |
| `<ns>:{p:<id>}:touch:<ws>`        | string | heartbeat.lua    | 60 s (throttles SQL last_seen) |
| `<ns>:{p:<id>}:events`            | stream | publish.lua      | MAXLEN ~ 10000              |
| `<ns>:{p:<id>}:mbox:<ws>`         | stream | publish.lua      | none; entries leave on ack  |
| `<ns>:{p:<id>}:mbox:<ws>:ids`     | hash   | publish/ack.lua  | none; delivery id -> entry id |
| `<ns>:{p:<id>}:seen:<outbox id>`  | string | publish.lua      | 7 days (delivery dedupe)    |
| `<ns>:{p:<id>}:waiting:<ws>`      | zset   | wait.lua         | none; score = deadline, pruned by heartbeat |
| `<ns>:{p:<id>}:waitinfo:<ws>`     | hash   | wait.lua         | none; waiter -> {alias, since} |
| `<ns>:{p:<id>}:epoch`             | string | rebuild (messages.py) | none; absent = rebuild mailboxes from SQL |
| `<ns>:{p:<id>}:rebuilding`        | string | heartbeat.lua    | 30 s (a rebuild was requested) |
| `<ns>:sweep:<name>`               | string | RedisStore.try_lock | the sweep's period (one runner per period) |
| `<ns>:{p:<id>}:res:<repo>`        | hash   | reserve/autoreserve/unreserve/expire.lua | field `<ws>\\0<pattern>` -> entry JSON; key expires with its last entry + grace |
| `<ns>:{p:<id>}:resexp:<repo>`     | zset   | same as `res`    | member = field of `res`, score = expiry (s); same TTL as `res` |

The mailbox consumer group is `inbox` (`MAILBOX_GROUP`).
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

    def sweep_lock_key(self, name: str) -> str:
        return f"{self.ns}:sweep:{name}"

    def rebuilding_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:rebuilding"

    def epoch_key(self, project_id: int) -> str:
        return f"{self._p(project_id)}:epoch"

    def reservations_key(self, project_id: int, repo_id: int) -> str:
        return f"{self._p(project_id)}:res:{repo_id}"

    def reservation_expiry_key(self, project_id: int, repo_id: int) -> str:
        return f"{self._p(project_id)}:resexp:{repo_id}"
