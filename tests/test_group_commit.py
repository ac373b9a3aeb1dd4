"""Group commit on SQLite (store/sqlite_writer.py `GroupSync`): a write transaction returns only after an
fsync of the WAL that started after its commit, and commits that wait together share one fsync.

fsync is observed by wrapping `os.fsync`; the ordering tests hold the first fsync on an event, so
they depend on the order of events, never on timing.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import peewee
import pytest

from store import db, sqlite_writer
from store.config import ConfigError, Settings
from store.errors import StorageFull, Unavailable


@pytest.fixture
def database(tmp_path: Path) -> Iterator[peewee.Database]:
    settings = Settings.from_env({"BEADWIRE_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/g.db"})
    database = db.init_db(settings)
    database.execute_sql("CREATE TABLE t (x INTEGER)")
    yield database
    database.close_all()


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file each `os.fsync` call synced, in order."""
    seen: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


def _insert(x: int) -> None:
    db.connect()
    try:
        with db.transaction():
            db.database.execute_sql("INSERT INTO t (x) VALUES (?)", (x,))
    finally:
        db.close()


def _group() -> sqlite_writer.GroupSync:
    writer = sqlite_writer.current()
    assert writer is not None and writer.group is not None
    return writer.group


def _rows() -> list[int]:
    return [x for (x,) in db.database.execute_sql("SELECT x FROM t ORDER BY x").fetchall()]


def test_group_is_the_default_and_commits_run_without_their_own_fsync(database):
    assert Settings.from_env({}).sqlite_synchronous == "GROUP"
    assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: the fsync is ours
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unknown_durability_mode_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="GROUP, FULL"):
        Settings.from_env({"BEADWIRE_SQLITE_SYNCHRONOUS": "sometimes"})


def test_full_mode_keeps_sqlites_own_fsync(tmp_path):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path}/f.db",
                                  "BEADWIRE_SQLITE_SYNCHRONOUS": "full"})
    database = db.init_db(settings)
    try:
        assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
        writer = sqlite_writer.current()
        assert writer is not None and writer.group is None  # the lock stays: only the fsync is SQLite's
    finally:
        database.close_all()


def test_a_transaction_returns_after_the_wal_holding_its_commit_was_synced(database, fsyncs, monkeypatch):
    seen_at_fsync: list[list[int]] = []
    recording = os.fsync

    def check_commit_first(fd: int) -> None:
        other = peewee.SqliteDatabase(database.database)  # another connection sees only committed rows
        seen_at_fsync.append([x for (x,) in other.execute_sql("SELECT x FROM t").fetchall()])
        other.close()
        recording(fd)

    monkeypatch.setattr(os, "fsync", check_commit_first)
    _insert(7)
    assert fsyncs == [database.database + "-wal"]
    assert seen_at_fsync == [[7]]  # committed before the fsync, and the fsync before the return


def test_a_write_outside_any_transaction_is_synced_too(database, fsyncs):
    db.connect()
    database.execute_sql("INSERT INTO t (x) VALUES (1)")
    assert fsyncs == [database.database + "-wal"]
    database.execute_sql("SELECT x FROM t").fetchall()
    assert len(fsyncs) == 1  # reads cost nothing
    db.close()


def test_nested_transactions_sync_once_at_the_outermost_commit(database, fsyncs):
    db.connect()
    with db.transaction():
        with db.transaction():
            db.database.execute_sql("INSERT INTO t (x) VALUES (1)")
        assert fsyncs == []
    assert len(fsyncs) == 1
    db.close()


def test_commits_waiting_on_an_fsync_in_flight_share_the_next_one(database, monkeypatch):
    syncer = _group()
    before = syncer.issued  # the fixture's CREATE TABLE was synced too
    release_first = threading.Event()
    first_started = threading.Event()
    events: list[str] = []
    lock = threading.Lock()
    real = os.fsync
    calls = 0

    def slow_first(fd: int) -> None:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
            events.append(f"fsync {n} start")
        if n == 1:
            first_started.set()
            assert release_first.wait(30)
        real(fd)
        with lock:
            events.append(f"fsync {n} end")

    monkeypatch.setattr(os, "fsync", slow_first)

    def writer(x: int) -> Callable[[], None]:
        def run() -> None:
            _insert(x)
            with lock:
                events.append(f"returned {x}")
        return run

    leader = threading.Thread(target=writer(0))
    leader.start()
    assert first_started.wait(30)
    followers = [threading.Thread(target=writer(x)) for x in (1, 2, 3)]
    for t in followers:
        t.start()
    try:
        _wait_for(lambda: syncer.issued == before + 4)  # all three committed and are waiting for durability
        assert not any(e.startswith("returned") for e in events)  # nobody answers on an older fsync
    finally:
        release_first.set()
    for t in [leader, *followers]:
        t.join(30)
    assert _rows() == [0, 1, 2, 3]
    assert events.count("fsync 2 start") == 1 and "fsync 3 start" not in events  # one fsync for three
    second_done = events.index("fsync 2 end")
    assert events.index("returned 0") > events.index("fsync 1 end")
    assert all(events.index(f"returned {x}") > second_done for x in (1, 2, 3))


def _wait_for(condition: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(3000):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached in 30 s")


@pytest.mark.parametrize(("code", "error", "text"),
                         [(errno.EIO, Unavailable, "could not sync the write to disk"),
                          (errno.ENOSPC, StorageFull, "disk is full")])
def test_a_failed_fsync_is_a_clear_error_and_the_next_write_syncs_again(
        database, monkeypatch, code, error, text):
    real = os.fsync
    failing = {"on": True}

    def flaky(fd: int) -> None:
        if failing["on"]:
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", flaky)
    with pytest.raises(error, match=text):
        _insert(1)
    failing["on"] = False
    _insert(2)  # the failed leader let go: a new fsync runs
    syncer = _group()
    assert syncer.synced == syncer.issued
