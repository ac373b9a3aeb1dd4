"""The Peewee database: one proxy, bound once per process by `init_db(settings)`.

SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions so concurrent writers queue on the
database lock instead of failing on a read-to-write upgrade; PostgreSQL relies on unique indexes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import peewee
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from store import unit
from store.config import Settings
from store.errors import BeadwireError, StorageFull, Unavailable
from store.green import offload
from store.unit import UnitOfWork

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


_writer_lock: WriterLock | None = None
_group_sync: GroupSync | None = None


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


def _replace_lock(lock: WriterLock | None, syncer: GroupSync | None = None) -> None:
    global _writer_lock, _group_sync
    if _writer_lock is not None:
        os.close(_writer_lock.fd)
    _writer_lock, _group_sync = lock, syncer


class _SqliteDatabase(PooledSqliteDatabase):
    """Makes a write outside `transaction()` durable too in group-commit mode (autocommit
    statements commit with NORMAL, i.e. without fsync, like every transaction there)."""

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        cursor = super().execute_sql(sql, params)
        if _group_sync is not None and not self.in_transaction() and sql.lstrip()[:6].upper() in _WRITES:
            _make_durable(_group_sync)
        return cursor


_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLAC", "CREATE", "ALTER ", "DROP T", "DROP I"})


def _sqlite(settings: Settings, path: str) -> peewee.Database:
    group = settings.sqlite_synchronous == "GROUP"
    if path not in ("", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _replace_lock(WriterLock(path + ".lock"), GroupSync(os.path.abspath(path)) if group else None)
    else:
        _replace_lock(None)  # an in-memory database has no file to lock or sync
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


def _postgres(settings: Settings) -> peewee.Database:
    _replace_lock(None)  # PostgreSQL queues writers itself, row by row
    params = parse(settings.database_url)
    name = params.pop("database")
    # timeout: under gevent more requests than connections may run at once; they queue for one
    return PooledPostgresqlDatabase(name, max_connections=32, stale_timeout=300, timeout=30, **params)


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


#: Driver messages that mean the database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's 53100).
_DISK_FULL = ("database or disk is full", "No space left on device", "could not extend file")


def storage_error(exc: BaseException) -> BeadwireError | None:
    """Our error for a failure of the database itself (None for anything else).

    A lost connection or a server that is down or starting becomes `Unavailable` (503), a full disk
    `StorageFull` (507). The pool needs no help afterwards: it discards a connection the driver has
    marked closed when it is next checked out, so requests succeed again once the server is back.
    """
    failures = [e for e in _chain(exc) if isinstance(e, (peewee.OperationalError, peewee.InterfaceError))]
    if not failures or failures[0] is not exc:
        return None
    # the first failure is the cause: a failed write is followed by a failed ROLLBACK ("cannot rollback
    # - no transaction is active" after SQLite's own rollback on a full disk, "connection already closed")
    text = " ".join(str(failures[-1]).split()) or type(failures[-1]).__name__  # psycopg2's span lines
    if any(marker in str(e) for e in failures for marker in _DISK_FULL):
        return _disk_full(text)
    return Unavailable(f"database unavailable: {text}")


def _disk_full(detail: object) -> StorageFull:
    return StorageFull(f"storage full: the database's disk is full ({detail}); free space, then retry")


def _chain(exc: BaseException | None) -> list[BaseException]:
    """`exc`, then what it was raised from or while handling, and so on (newest first)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def connect() -> None:
    """Open this thread's connection (per request / per message).

    Raises:
        Unavailable: the database cannot be reached.
    """
    try:
        database.connect(reuse_if_open=True)
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        raise storage_error(exc) from exc  # type: ignore[misc]


def close() -> None:
    """Return this thread's connection to the pool."""
    if not database.is_closed():
        database.close()


@contextmanager
def transaction() -> Iterator[UnitOfWork]:
    """One write transaction, yielding its unit of work (store/unit.py); on SQLite it takes the write
    lock up front (BEGIN IMMEDIATE).

    The outermost transaction of a request carrying an `Idempotency-Key` inserts the key's row first
    thing inside it (`UnitOfWork.start`), so that row commits or rolls back with the fact.
    """
    lock = _writer_lock if is_sqlite() else None
    outermost = database.transaction_depth() == 0
    scope = unit.scope()
    work = scope.begin(outermost)
    try:
        with lock.hold() if lock is not None else nullcontext(), database.atomic():
            work.start()
            yield work
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        # InterfaceError: the connection died mid-transaction and the ROLLBACK could not even be sent
        scope.end(work, False)
        raise storage_error(exc) from exc  # type: ignore[misc]
    except BaseException:
        scope.end(work, False)
        raise
    scope.end(work, True)
    if outermost and lock is not None and _group_sync is not None:
        _make_durable(_group_sync)


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
            raise _disk_full(exc) from exc
        raise Unavailable(f"database unavailable: could not sync the write to disk ({exc})") from exc


def ping() -> str:
    """'ok' when a trivial query succeeds, else the error text."""
    try:
        database.execute_sql("SELECT 1").fetchone()
        return "ok"
    except peewee.PeeweeException as exc:
        return f"error: {exc}"


# -- hand-written statements for the hot paths -------------------------------------------------
#
# Peewee spends ~0.2 ms building the SQL of one query, more than SQLite takes to run it, and a
# claim ran a dozen. The few statements every claim, mail and chat runs are written out once in
# the subset of SQL both databases accept, with `?` placeholders put in the driver's style here.

_styled: dict[tuple[str, str], str] = {}
#: per model: field names, column names and the positions of boolean fields (SQLite gives 0/1)
_shapes: dict[type, tuple[list[str], list[str], list[int]]] = {}


def _style(statement: str) -> str:
    param = database.param
    styled = _styled.get((statement, param))
    if styled is None:
        styled = statement if param == "?" else statement.replace("?", param)
        if len(_styled) < 2000:  # statements with IN (?, ?, ...) vary in length: keep the cache bounded
            _styled[statement, param] = styled
    return styled


def execute(statement: str, params: Sequence[Any] = ()) -> Any:
    """Run one hand-written statement (placeholders written `?`, no literal `?` or `%`); the cursor."""
    return database.execute_sql(_style(statement), params)


def fetchone(statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    return execute(statement, params).fetchone()


def fetchall(statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return execute(statement, params).fetchall()


def insert(statement: str, params: Sequence[Any] = ()) -> int:
    """Run an INSERT and return the new row's id (as peewee does: lastrowid, or RETURNING)."""
    if is_sqlite():
        return execute(statement, params).lastrowid
    return execute(statement + ' RETURNING "id"', params).fetchone()[0]


def _shape(model: type[peewee.Model]) -> tuple[list[str], list[str], list[int]]:
    shape = _shapes.get(model)
    if shape is None:
        fields = model._meta.sorted_fields
        shape = _shapes[model] = ([f.name for f in fields], [f.column_name for f in fields],
                                  [i for i, f in enumerate(fields) if isinstance(f, peewee.BooleanField)])
    return shape


def columns(model: type[peewee.Model], alias: str) -> str:
    """Every column of `model` as a select list (`"b"."id", "b"."project_id", ...`), for `build`."""
    return ", ".join(f'"{alias}"."{column}"' for column in _shape(model)[1])


def build(model: type[peewee.Model], row: Sequence[Any], start: int = 0) -> Any:
    """A model instance from `row[start:]` selected with `columns(model, ...)`, as peewee would make it."""
    names, _, bools = _shape(model)
    values = list(row[start:start + len(names)])
    for i in bools:
        if values[i] is not None:
            values[i] = bool(values[i])
    obj = model(__no_default__=True)
    obj.__data__ = dict(zip(names, values))
    return obj
