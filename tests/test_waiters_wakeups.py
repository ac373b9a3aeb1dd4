"""A mailbox's wake-up carries its entry: the waiter takes it from there, and reads the stream again only
when it cannot be sure it holds every entry (store/wakeups.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from store.keys import Keys
from store.redis import RedisStore

pytestmark = pytest.mark.atomic  # Pub/Sub and a listener thread: on a real Redis server

KEYS = Keys("t")
STREAM, CHANNEL = KEYS.mailbox_key(1, 7), KEYS.wake_channel(1)


class Waiter:
    """`await_entries` on mailbox 7 in a thread, counting the reads of the stream it makes."""

    def __init__(self, rs: RedisStore, cursor: str = "0-0", timeout: float = 30) -> None:
        self.rs, self.reads, self.got = rs, [], None
        self.thread = threading.Thread(target=self._run, args=(cursor, timeout), daemon=True)
        self.thread.start()
        _until(lambda: self._ticket_held() and self.reads)  # subscribed, and past its first read

    def _run(self, cursor: str, timeout: float) -> None:
        self.got = self.rs.waker.await_entries(CHANNEL, STREAM, cursor, timeout, self._read)

    def _read(self, after: str) -> Any:
        self.reads.append(after)
        return self.rs.mailbox_after(1, 7, after)

    def _ticket_held(self) -> bool:
        channel = self.rs.waker.channels.get(CHANNEL)
        return channel is not None and channel.subscribed and bool(channel.tickets.get(STREAM))

    def result(self) -> Any:
        self.thread.join(15)
        assert not self.thread.is_alive()
        return self.got


def _until(condition: Callable[[], Any], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the waiter never got to wait"
        time.sleep(0.01)


@pytest.fixture
def rs(real_redis):
    return RedisStore(real_redis, KEYS)


def test_a_waiter_takes_the_entry_its_wake_up_carries_without_reading_the_stream_again(rs):
    waiter = Waiter(rs)
    rs.publish(1, 1, "chat", '{"body": "8765"}', recipient_id=7, delivery_id=70)
    assert waiter.result() == rs.mailbox_after(1, 7, "0-0")  # exactly what a read gives
    assert waiter.reads == ["0-0"]  # the read before it waited, and no other


def test_a_bare_announcement_makes_the_waiter_read_the_stream(rs, real_redis):
    waiter = Waiter(rs)
    real_redis.xadd(STREAM, {"id": "71", "kind": "mail", "data": "{}"})
    real_redis.publish(CHANNEL, STREAM)  # as reclaim.lua announces: the name alone
    assert [fields["id"] for _, fields in waiter.result()] == ["71"]
    assert waiter.reads == ["0-0", "0-0"]


def test_a_payload_too_big_to_carry_is_announced_bare_and_read(rs):
    waiter = Waiter(rs)
    big = '{"body": "%s"}' % ("x" * 9000)  # over publish.lua's CARRY_MAX
    rs.publish(1, 1, "chat", big, recipient_id=7, delivery_id=76)
    assert [fields["data"] for _, fields in waiter.result()] == [big]
    assert waiter.reads == ["0-0", "0-0"]


def test_a_lost_connection_makes_the_waiter_read_the_stream(rs, real_redis):
    waiter = Waiter(rs)
    real_redis.xadd(STREAM, {"id": "72", "kind": "mail", "data": "{}"})  # its announcement was lost
    rs.waker._wake_all()  # what the listener does when its connection fails
    assert [fields["id"] for _, fields in waiter.result()] == ["72"]
    assert waiter.reads == ["0-0", "0-0"]


def test_a_carried_entry_not_after_the_cursor_is_not_returned(rs):
    waiter = Waiter(rs, cursor="99999999999999-0", timeout=1)
    rs.publish(1, 1, "chat", "{}", recipient_id=7, delivery_id=73)  # an id before the cursor
    assert waiter.result() == []
    assert waiter.reads == ["99999999999999-0"]

