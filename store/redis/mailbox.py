"""Mailboxes: delivering outbox rows (publish.lua), reading and acknowledging entries, chat waits."""

from __future__ import annotations

import contextlib
import json
from typing import Any, cast

import redis

from store.errors import Unavailable
from store.keys import MAILBOX_GROUP
from store.redis.base import DEFAULT_STREAM_MAXLEN, Entries, RedisBase, queue, settle
from store.redis.client import unavailable
from store.redis.scripts import Call
from store.wakeups import LIMIT

#: How long a delivery id is remembered for deduplication.
DEFAULT_DEDUPE_TTL = 7 * 24 * 3600


class Mailbox(RedisBase):
    """The project event stream's and the mailboxes' writers and readers."""

    def publish(self, project_id: int, outbox_id: int, kind: str, payload: str, recipient_id: int | None,
                delivery_id: int | None = None, to_events: bool = True) -> bool:
        """Deliver an outbox row once; False when it had been delivered already.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        call = self._publish_call(project_id, outbox_id, kind, payload, recipient_id, delivery_id, to_events)
        return call.run()

    def _publish_call(self, project_id: int, outbox_id: int, kind: str, payload: str,
                      recipient_id: int | None, delivery_id: int | None = None,
                      to_events: bool = True) -> Call[bool]:
        k, box = self.keys, recipient_id or 0  # box 0: an unused key of this project's slot (no mailbox)
        return self.scripts.publish(
            k.delivered_key(project_id, outbox_id), k.events_key(project_id), k.mailbox_key(project_id, box),
            k.mailbox_index_key(project_id, box), outbox_id=outbox_id, kind=kind, payload=payload,
            maxlen=DEFAULT_STREAM_MAXLEN, dedupe_ttl=DEFAULT_DEDUPE_TTL, to_events=to_events,
            delivery_id="" if delivery_id is None or recipient_id is None else delivery_id,
            wake=k.wake_channel(project_id))

    def publish_many(self, rows: list[tuple[Any, ...]], cursor_of: tuple[int, int] | None = None
                     ) -> tuple[str | None, list[bool | None]]:
        """`publish` for several rows (each a tuple of its arguments) in one round trip; with `cursor_of`
        (project id, workspace id), first read that mailbox's cursor, as `mailbox_cursor` does.

        Returns the cursor (None without `cursor_of`) and per row whether this call delivered it
        (None: it failed; publish it again later).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        calls = [self._publish_call(*row) for row in rows]
        cursor_keys = [self.keys.mailbox_key(*cursor_of)] if cursor_of is not None else []
        pipe = self._script_pipeline([*cursor_keys, *(k for call in calls for k in call.keys)])
        if pipe is None:  # a cluster and several slots: one routed call each
            return self._publish_each(calls, cursor_of)
        if cursor_of is not None:
            pipe.xrevrange(cursor_keys[0], count=1)
        queue(pipe, calls)
        with unavailable():
            replies = pipe.execute(raise_on_error=False)
            cursor = None
            if cursor_of is not None:
                last = replies.pop(0)
                if isinstance(last, Exception):
                    raise last
                cursor = last[0][0] if last else "0-0"
        done = [settle(call, reply) for call, reply in zip(calls, replies)]
        return cursor, [None if isinstance(d, Exception) else d for d in done]

    def _publish_each(self, calls: list[Call[bool]], cursor_of: tuple[int, int] | None
                      ) -> tuple[str | None, list[bool | None]]:
        """`publish_many` without a pipeline (a cluster, rows of several projects)."""
        cursor = self.mailbox_cursor(*cursor_of) if cursor_of is not None else None
        done: list[bool | None] = []
        for call in calls:
            try:
                done.append(call.run())
            except Unavailable:
                done.append(None)
        return cursor, done

    def ack(self, project_id: int, workspace_id: int, delivery_ids: list[int]) -> int:
        """Acknowledge mailbox entries by delivery id; returns how many were pending."""
        if not delivery_ids:
            return 0
        k = self.keys
        return self.scripts.ack(k.mailbox_key(project_id, workspace_id),
                                k.mailbox_index_key(project_id, workspace_id), group=MAILBOX_GROUP,
                                delivery_ids=delivery_ids).run()

    def set_waiting(self, project_id: int, on_id: int, waiter_id: int, deadline: float,
                    info: dict[str, Any]) -> None:
        """Show `waiter_id` as blocked on `on_id` until `deadline` (0 clears)."""
        k = self.keys
        self.scripts.wait(k.waiting_key(project_id, on_id), k.waitinfo_key(project_id, on_id),
                          waiter_id=waiter_id, deadline=repr(deadline) if deadline else "0",
                          info=json.dumps(info)).run()

    def end_turn(self, project_id: int, workspace_id: int, other_id: int, read_ids: list[int],
                 deadline: float, info: dict[str, Any]) -> None:
        """What a chat post does once committed, in one round trip: acknowledge the entries of
        `read_ids` in the poster's mailbox (`ack`), end `other_id`'s wait on the poster, and with a
        `deadline` (0: none) show the poster as waiting on `other_id` (`set_waiting`).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        k = self.keys
        calls: list[Call[Any]] = []
        if read_ids:
            calls.append(self.scripts.ack(k.mailbox_key(project_id, workspace_id),
                                          k.mailbox_index_key(project_id, workspace_id), group=MAILBOX_GROUP,
                                          delivery_ids=read_ids))
        calls.append(self.scripts.wait(k.waiting_key(project_id, workspace_id),
                                       k.waitinfo_key(project_id, workspace_id), waiter_id=other_id,
                                       deadline="0", info="{}"))
        if deadline:
            calls.append(self.scripts.wait(k.waiting_key(project_id, other_id),
                                           k.waitinfo_key(project_id, other_id), waiter_id=workspace_id,
                                           deadline=repr(deadline), info=json.dumps(info)))
        for done in self.run_all(calls):
            if isinstance(done, Unavailable):
                raise done

    def waiting_on(self, project_id: int, workspace_id: int, now: float) -> list[dict[str, Any]]:
        """Who is blocked waiting for this workspace's reply."""
        with unavailable():
            ids = cast(list[str], self.client.zrangebyscore(self.keys.waiting_key(project_id, workspace_id),
                                                             now, "+inf"))
            infos = self.client.hmget(self.keys.waitinfo_key(project_id, workspace_id), ids) if ids else []
        return [json.loads(i) for i in infos if i]

    def mailbox_cursor(self, project_id: int, workspace_id: int) -> str:
        """The id of the newest entry in a mailbox ("0-0" when empty): wait from here on."""
        with unavailable():
            last = cast(Entries, self.client.xrevrange(self.keys.mailbox_key(project_id, workspace_id),
                                                       count=1))
        return last[0][0] if last else "0-0"

    def wait_mailbox(self, project_id: int, workspace_id: int, cursor: str, timeout_ms: int) -> Entries:
        """Block until entries newer than `cursor` arrive in a mailbox, or `timeout_ms` passes.

        A plain XREAD, outside the consumer group: waiting must not consume the banner's items. Once
        blocked, what wakes it usually carries the entries themselves (store/wakeups.py).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream = self.keys.mailbox_key(project_id, workspace_id)
        return self.waker.await_entries(self.keys.wake_channel(project_id), stream, cursor,
                                        max(timeout_ms, 1) / 1000,
                                        lambda after: self._xread(stream, after, LIMIT))

    def read_group_blocking(self, project_id: int, workspace_id: int, timeout_ms: int) -> Entries:
        """Block until new mailbox entries arrive and read them through the group (for `watch`).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream = self.keys.mailbox_key(project_id, workspace_id)
        return self._await(project_id, stream, timeout_ms, lambda: self.read_group(project_id, workspace_id))

    def read_group(self, project_id: int, workspace_id: int) -> Entries:
        """New mailbox entries, read through the group (taken: shown once), without blocking.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream, consumer = self.keys.mailbox_key(project_id, workspace_id), f"ws{workspace_id}"
        with unavailable():
            try:
                found = self.client.xreadgroup(MAILBOX_GROUP, consumer, {stream: ">"}, count=20)
            except redis.ResponseError:  # NOGROUP: a mailbox never read (the heartbeat makes the group)
                with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made meanwhile
                    self.client.xgroup_create(stream, MAILBOX_GROUP, id="0", mkstream=True)
                found = self.client.xreadgroup(MAILBOX_GROUP, consumer, {stream: ">"}, count=20)
        return cast(list[tuple[str, Entries]], found)[0][1] if found else []

    def mailbox_after(self, project_id: int, workspace_id: int, cursor: str) -> Entries:
        """Mailbox entries after `cursor`, outside the group (nothing consumed), without blocking."""
        return self._xread(self.keys.mailbox_key(project_id, workspace_id), cursor, 100)

    def mailbox_stream(self, project_id: int, workspace_id: int) -> str:
        """The name of a workspace's mailbox stream (what `await_streams` waits on)."""
        return self.keys.mailbox_key(project_id, workspace_id)

    def mark_rebuilt(self, project_id: int, now: float) -> None:
        """Record that a project's mailboxes are whole in this Redis (ends rebuild requests)."""
        with unavailable():
            self.client.set(self.keys.epoch_key(project_id), repr(now))

    def reclaim_stuck(self, project_id: int, workspace_id: int, min_idle_ms: int, count: int = 100) -> int:
        """Show again, once, mailbox entries left unread longer than `min_idle_ms` (XAUTOCLAIM)."""
        k = self.keys
        return self.scripts.reclaim(k.mailbox_key(project_id, workspace_id),
                                    k.mailbox_index_key(project_id, workspace_id), group=MAILBOX_GROUP,
                                    consumer=f"ws{workspace_id}", min_idle_ms=min_idle_ms, count=count,
                                    wake=k.wake_channel(project_id)).run()
