"""Every Redis key beadwire uses, built here and nowhere else.

Each key carries the project in a hash tag (`{p:<id>}`) so every multi-key operation of one
project lands in one Redis Cluster slot. `ns` is `Settings.namespace` (default `bw`).

| key                               | type   | owner            | TTL                        |
|-----------------------------------|--------|------------------|----------------------------|
| `<ns>:{p:<id>}:presence`          | hash   | heartbeat.lua    | none; fields pruned by sweep |
| `<ns>:{p:<id>}:online`            | zset   | heartbeat.lua    | none; score = last beat (s) |
| `<ns>:{p:<id>}:touch:<ws>`        | string | heartbeat.lua    | 60 s (throttles SQL last_seen) |
| `<ns>:{p:<id>}:events`            | stream | publish.lua      | MAXLEN ~ 10000              |
| `<ns>:{p:<id>}:mbox:<ws>`         | stream | publish.lua      | MAXLEN ~ 10000              |
| `<ns>:{p:<id>}:seen:<outbox id>`  | string | publish.lua      | 7 days (delivery dedupe)    |
"""

from __future__ import annotations


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

    def delivered_key(self, project_id: int, outbox_id: int) -> str:
        return f"{self._p(project_id)}:seen:{outbox_id}"
