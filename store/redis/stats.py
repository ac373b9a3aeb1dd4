"""What `GET /metrics` reads from and adds to Redis (store/metrics.py does the rest)."""

from __future__ import annotations

from typing import cast

from store.redis.base import RedisBase
from store.redis.client import unavailable


class Stats(RedisBase):
    """The shared request counters, queue depths, and counts of online workspaces and open waits."""

    def add_counters(self, counts: dict[str, int], sums: dict[str, float]) -> None:
        """Add deltas to the shared counters hash (`Keys.metrics_key`) in one round trip.

        Raises:
            Unavailable: Redis cannot be reached (nothing may have been added).
        """
        key = self.keys.metrics_key()
        pipe = self.client.pipeline(transaction=False)  # one key: one slot, one node
        for field, count in counts.items():
            pipe.hincrby(key, field, count)
        for field, total in sums.items():
            pipe.hincrbyfloat(key, field, total)
        with unavailable():
            pipe.execute()

    def counters(self) -> dict[str, str]:
        """The shared counters hash: field -> value."""
        with unavailable():
            return cast(dict[str, str], self.client.hgetall(self.keys.metrics_key()))

    def queue_depths(self, queues: tuple[str, ...], cluster: bool) -> dict[str, int]:
        """Dramatiq messages queued or in flight, per queue name."""
        with unavailable():
            return {q: int(self.client.hlen(self.keys.broker_queue_key(q, cluster))) for q in queues}

    def online_and_waiting(self, workspaces: list[tuple[int, int]], online_since: float,
                           now: float) -> tuple[int, int]:
        """(workspaces beating since `online_since`, chat waits still open), summed over the projects of
        `workspaces` ((project id, workspace id) pairs): one pipelined ZCOUNT per project (online) and
        per workspace (waiting on it); a cluster pipeline routes each to its slot's node.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        projects = sorted({p for p, _ in workspaces})
        if not projects:
            return 0, 0
        keys, pipe = self.keys, self.client.pipeline(transaction=False)
        for project in projects:
            pipe.zcount(keys.online_key(project), online_since, "+inf")
        for project, workspace in workspaces:
            pipe.zcount(keys.waiting_key(project, workspace), f"({now!r}", "+inf")
        with unavailable():
            counts = pipe.execute()
        return int(sum(counts[:len(projects)])), int(sum(counts[len(projects):]))
