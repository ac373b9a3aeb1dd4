"""SQLite's writers: one write lock across threads and processes, and group commit.

store/db.py sees only `open_database` (the SQLite database object for a path), `current()` (the
writer of the database in use, None on PostgreSQL or in memory) and a writer's `hold()` and
`make_durable()`, which `transaction()` calls around and after a write transaction.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import peewee
from playhouse.pool import PooledSqliteDatabase

from store.config import Settings
from store.errors import StorageFull, Unavailable
from store.green import offload


class WriterLock:
    """Queues SQLite writers in the kernel instead of in SQLite's busy handler.

    SQLite makes a blocked writer sleep with backoff (up to 100 ms a nap), which collapses
    throughput when a few gunicorn threads write at once. A thread lock plus `flock` on a file
    beside the database hands the write lock over as soon as it is free, across processes too.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.local = threading.local()
        self.mutex = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        depth = getattr(self.local, "depth", 0)
        if depth == 0:
            self.mutex.acquire()
            self._flock()
        self.local.depth = depth + 1
        try:
            yield
        finally:
            self.local.depth = depth
            if depth == 0:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                self.mutex.release()

    def _flock(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process writes: wait for it off the gevent hub (store/green.py)
            offload(fcntl.flock, self.fd, fcntl.LOCK_EX)


class GroupSync:
    """Group commit for SQLite: one fsync of the WAL makes every commit made before it durable.

    With `synchronous=FULL` each commit fsyncs the WAL while holding the write lock, so writers
    queue behind the disk one by one (~0.3 ms each here). In "group" mode the connections run
    `synchronous=NORMAL` (a commit writes the WAL without fsync) and each committer calls `sync()`
    after releasing the lock: it returns once an fsync that *started after its commit* finished.
    A committer that finds an fsync in flight waits for the next one, which then covers everyone
    who committed meanwhile: one fsync per batch instead of one per transaction, and never under
    the lock. Frames no longer in the WAL were checkpointed, and SQLite fsyncs the database file
    after every checkpoint even in NORMAL mode, so syncing the WAL file is enough.
    """

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.wal_path = db_path + "-wal"
        self.cond = threading.Condition()
        self.issued = 0  # tickets handed out, one per commit that asked to be made durable
        self.synced = 0  # every ticket up to this one is on disk
        self.busy = False  # an fsync is in flight

    def sync(self) -> None:
        """Return once everything this thread committed is on disk.

        Raises:
            OSError: the fsync failed (the caller's commit may not be durable).
        """
        with self.cond:
            self.issued += 1
            ticket = self.issued
            while self.synced < ticket:
                if not self.busy:
                    self.busy = True
                    target = self.issued  # this fsync covers every commit made so far
                    break
                self.cond.wait()
            else:
                return
        done = False
        try:
            self._fsync()
            done = True
        finally:
            with self.cond:
                self.busy = False
                if done:
                    self.synced = max(self.synced, target)
                self.cond.notify_all()

    def _fsync(self) -> None:
        # opened each time: SQLite may delete and recreate the WAL, and an old descriptor would
        # then sync a file nobody writes to
        try:
            fd = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(self.db_path, os.O_RDONLY)  # checkpointed and removed: the frames are here
        try:
            offload(os.fsync, fd)  # under gevent in a real thread: other requests run meanwhile
        finally:
            os.close(fd)


class SqliteWriter:
    """The write lock of one database file, and its group commit (None: SQLite fsyncs itself)."""

    def __init__(self, path: str, group: bool) -> None:
        self.lock = WriterLock(path + ".lock")
        self.group = GroupSync(os.path.abspath(path)) if group else None

    def hold(self) -> AbstractContextManager[None]:
        """The write lock, re-entrant within a thread."""
        return self.lock.hold()

    def make_durable(self) -> None:
        """After an outermost commit, once the lock is free: wait for the group fsync (if grouping)."""
        if self.group is not None:
            _make_durable(self.group)

    def close(self) -> None:
        os.close(self.lock.fd)


_current: SqliteWriter | None = None


def current() -> SqliteWriter | None:
    """The writer of the SQLite file in use; None on PostgreSQL or for an in-memory database."""
    return _current


def install(writer: SqliteWriter | None) -> None:
    """Make `writer` the current one (closing the lock file of the one it replaces)."""
    global _current
    if _current is not None:
        _current.close()
    _current = writer


def disk_full(detail: object) -> StorageFull:
    return StorageFull(f"storage full: the database's disk is full ({detail}); free space, then retry")


def _make_durable(syncer: GroupSync) -> None:
    """Wait for the group fsync, after the write lock is free (the next writer commits meanwhile).

    Raises:
        StorageFull: the disk is full. Unavailable: any other failure to sync; either way the
        transaction is committed in SQLite but may not survive a power cut, so it is not
        acknowledged as written.
    """
    try:
        syncer.sync()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise disk_full(exc) from exc
        raise Unavailable(f"database unavailable: could not sync the write to disk ({exc})") from exc


def execute(db: peewee.SqliteDatabase, sql: str, params: Any, writes: bool) -> Any:
    """Run one statement on `db`; `writes`: whether it changes anything (`is_write`).

    In group-commit mode a write outside `transaction()` is made durable here too: an autocommit
    statement commits with NORMAL, i.e. without fsync, like every transaction there. store/queries.py
    calls this straight, with `writes` worked out once per named statement: each of the claim's and
    mail's statements then passes one function of ours instead of four (~7,000 instructions fewer each).
    """
    cursor = db._execute_cursor(sql, params)  # Peewee's own: its error classes, its query hooks
    writer = _current
    if writes and writer is not None and writer.group is not None and not db.in_transaction():
        _make_durable(writer.group)
    return cursor


_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLAC", "CREATE", "ALTER ", "DROP T", "DROP I"})


def is_write(sql: str) -> bool:
    """Whether the statement `sql` changes the database (and so needs the group fsync)."""
    return sql.lstrip()[:6].upper() in _WRITES


class _SqliteDatabase(PooledSqliteDatabase):
    """Every statement Peewee runs passes `execute`, so that a write outside `transaction()` is
    durable too in group-commit mode."""

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        return execute(self, sql, params, is_write(sql))


def open_database(settings: Settings, path: str) -> peewee.Database:
    """The SQLite database at `path` (WAL, BEGIN IMMEDIATE), with its writer installed."""
    group = settings.sqlite_synchronous == "GROUP"
    if path not in ("", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        install(SqliteWriter(path, group))
    else:
        install(None)  # an in-memory database has no file to lock or sync
    return _SqliteDatabase(
        path,
        lock_type="IMMEDIATE",
        max_connections=64,
        stale_timeout=300,
        check_same_thread=False,
        timeout=30,
        pragmas={
            "journal_mode": "wal",
            "synchronous": "NORMAL" if group else settings.sqlite_synchronous,
            "busy_timeout": 30_000,
            "foreign_keys": 1,
            "cache_size": -16_000,
            # reads through the OS page cache: every pooled connection shares it, where each has
            # its own SQLite cache, emptied whenever another connection writes
            "mmap_size": 256 * 2**20,
        },
    )
