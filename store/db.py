"""The Peewee database: one proxy, bound once per process by `init_db(settings)`.

SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions so concurrent writers queue on the
database lock instead of failing on a read-to-write upgrade; PostgreSQL relies on unique indexes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import peewee
from playhouse.db_url import parse

from store.config import Settings
from store.errors import Unavailable

database = peewee.DatabaseProxy()


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
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.local.depth = depth + 1
        try:
            yield
        finally:
            self.local.depth = depth
            if depth == 0:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                self.mutex.release()


_writer_lock: WriterLock | None = None


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


def _replace_lock(lock: WriterLock | None) -> None:
    global _writer_lock
    if _writer_lock is not None:
        os.close(_writer_lock.fd)
    _writer_lock = lock


def _sqlite(settings: Settings, path: str) -> peewee.Database:
    from playhouse.pool import PooledSqliteDatabase

    if path not in ("", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _replace_lock(WriterLock(path + ".lock"))
    return PooledSqliteDatabase(
        path,
        lock_type="IMMEDIATE",
        max_connections=64,
        stale_timeout=300,
        check_same_thread=False,
        timeout=30,
        pragmas={
            "journal_mode": "wal",
            "synchronous": settings.sqlite_synchronous,
            "busy_timeout": 30_000,
            "foreign_keys": 1,
            "cache_size": -16_000,
        },
    )


def _postgres(settings: Settings) -> peewee.Database:
    _replace_lock(None)  # PostgreSQL queues writers itself, row by row
    from playhouse.pool import PooledPostgresqlDatabase

    params = parse(settings.database_url)
    name = params.pop("database")
    return PooledPostgresqlDatabase(name, max_connections=32, stale_timeout=300, **params)


def make_database(settings: Settings) -> peewee.Database:
    """A database object for `settings.database_url` (sqlite:///path or postgresql://...)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        # sqlite:///relative.db, sqlite:////abs/path.db, sqlite:///:memory:
        return _sqlite(settings, url.split(":///", 1)[1])
    return _postgres(settings)


def init_db(settings: Settings) -> peewee.Database:
    """Bind the proxy to the configured database (idempotent per process)."""
    db = make_database(settings)
    database.initialize(db)
    return db


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def connect() -> None:
    """Open this thread's connection (per request / per message)."""
    try:
        database.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise Unavailable(f"database unreachable: {exc}") from exc


def close() -> None:
    """Return this thread's connection to the pool."""
    if not database.is_closed():
        database.close()


@contextmanager
def transaction() -> Iterator[None]:
    """One write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
    lock = _writer_lock if is_sqlite() else None
    try:
        if lock is None:
            with database.atomic():
                yield
        else:
            with lock.hold(), database.atomic():
                yield
    except peewee.OperationalError as exc:
        raise Unavailable(f"database error: {exc}") from exc


def ping() -> str:
    """'ok' when a trivial query succeeds, else the error text."""
    try:
        database.execute_sql("SELECT 1").fetchone()
        return "ok"
    except peewee.PeeweeException as exc:
        return f"error: {exc}"
