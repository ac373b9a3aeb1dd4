"""The Peewee database: one proxy, bound once per process by `init_db(settings)`.

SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions so concurrent writers queue on the
database lock instead of failing on a read-to-write upgrade; PostgreSQL relies on unique indexes.
SQLite's writer lock and group commit live in store/sqlite_writer.py.
"""

from __future__ import annotations

import select
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import peewee
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

from store import sqlite_writer, unit
from store.config import Settings
from store.errors import BeadwireError, Unavailable
from store.unit import UnitOfWork

database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    #: Peewee's own record of the fields set since the row was made (`is_dirty()`, `save(only_dirty)`),
    #: left out of its stub: store/queries.py clears it for the rows it makes, as Peewee's cursor does.
    _dirty: set[str]

    class Meta:
        database = database
        legacy_table_names = False


class _Pool(PooledPostgresqlDatabase):
    """Peewee's PostgreSQL pool, with two round trips per request fewer.

    Checkout: Peewee sends `SELECT 1` on every one to find connections the server dropped. A server
    that closes a connection, on a restart or `pg_terminate_backend`, sends its FATAL message and
    closes the socket: the idle connection's socket turns readable. So only a connection with
    something to read (or not idle, or already closed) gets Peewee's check.

    BEGIN: Peewee sends it alone. Here it waits and goes out in one string with the transaction's
    first statement (`BEGIN; INSERT ...`, the server answers with the last result); a transaction
    that sent nothing sends no COMMIT or ROLLBACK either.

    Rows whose statement answers nothing anyone reads (an audit row, an event row: `defer`) wait in
    the same way and go out with the transaction's next statement or its COMMIT.
    """

    #: Whether store/queries.py runs its named statements prepared (`Settings.pg_prepare`).
    prepare = True

    def _is_closed(self, conn: Any) -> bool:
        if conn.closed or self._adapter.txn_status(conn) != self._adapter.txn_idle or _has_input(conn):
            return bool(super()._is_closed(conn))
        return False

    def begin(self, isolation_level: Any = None) -> None:
        if isolation_level is not None or self._isolation_level:
            super().begin(isolation_level)
            return
        self.connection()  # connects now if need be, as Peewee's BEGIN would: not mid-transaction
        self._state.deferred_begin = True
        self._state.queued = []

    def defer(self, sql: str, params: Sequence[Any]) -> None:
        """Run `sql` (an INSERT whose answer nobody reads) with this transaction's next round trip:
        in one string with its next statement, or with its COMMIT. Statements keep their order, so
        a later read in the transaction sees the row; an error in it fails that round trip, so the
        transaction fails before it commits (the error is raised where the next statement is run).
        Outside a transaction it runs now.
        """
        if not self.transaction_depth():
            self.execute_sql(sql, params)
            return
        queued = getattr(self._state, "queued", None)
        if queued is None:  # a transaction begun by Peewee's own BEGIN (an isolation level)
            queued = self._state.queued = []
        queued.append((sql, params))

    def _execute_cursor(self, sql: str, params: Any, **cursor_options: Any) -> Any:
        head, queued, queued_params = "", *self._take_queued()
        # the depth check: a flag left by a transaction that never ended cannot open a new one
        if getattr(self._state, "deferred_begin", False) and self.transaction_depth():
            self._state.deferred_begin = False
            head = "BEGIN; "  # no `%` in the prefix: psycopg2's parameters are unaffected
        if queued and not params:
            # psycopg2 fills `%s` in the whole string: only a statement with parameters of its own
            # takes the queued ones in front (one without may hold a literal `%`); else they go first
            super()._execute_cursor(head + queued.removesuffix("; "), queued_params)
            head = queued = ""
        if queued:
            sql, params = queued + sql, [*queued_params, *params]
        return super()._execute_cursor(head + sql, params, **cursor_options)

    def _take_queued(self) -> tuple[str, list[Any]]:
        """The statements `defer` queued, as one string (each ending in "; ") and their parameters."""
        queued = getattr(self._state, "queued", None)
        if not queued:
            return "", []
        self._state.queued = []
        return "".join(f"{sql}; " for sql, _ in queued), [p for _, params in queued for p in params]

    def commit(self) -> None:
        queued, params = self._take_queued()
        unsent = self._unsent()
        if queued:  # the rows still queued go in the COMMIT's own round trip (its BEGIN too, if unsent)
            super()._execute_cursor(("BEGIN; " if unsent else "") + queued + "COMMIT", params)
        elif not unsent:
            super().commit()

    def rollback(self) -> None:
        self._take_queued()  # never sent: nothing of them to undo
        if not self._unsent():
            super().rollback()

    def _unsent(self) -> bool:
        """Whether the transaction ending now never sent its BEGIN (then there is nothing to end)."""
        deferred = bool(getattr(self._state, "deferred_begin", False))
        self._state.deferred_begin = False
        return deferred


#: per driver connection, the statements prepared on it (they live as long as it does)
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def prepared_call(name: str, text: str, n_params: int) -> str:
    """The EXECUTE of the statement `text` (placeholders `$1`...) as the server-side prepared statement
    `name`, prepared on this connection first if need be.

    PostgreSQL plans a statement on every plain execution; a prepared one is planned once per
    connection (a generic plan after five runs). PREPARE goes alone the first time on a connection:
    it is not transactional, so it holds even when that transaction then fails or rolls back.
    """
    prepared = _prepared.setdefault(database.connection(), set())
    if name not in prepared:
        database.execute_sql(f"PREPARE {name} AS {text}")
        prepared.add(name)
    return f"EXECUTE {name}({', '.join(['%s'] * n_params)})" if n_params else f"EXECUTE {name}"


def _has_input(conn: Any) -> bool:
    """Whether an idle connection's socket has bytes (or EOF) waiting: the server spoke unasked."""
    # poll, not select: select refuses a descriptor past 1023 (a busy process has that many open), and
    # each refusal would cost the round trip this check saves
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except OSError:  # let the round trip tell
        return True


def _postgres(settings: Settings) -> peewee.Database:
    sqlite_writer.install(None)  # PostgreSQL queues writers itself, row by row
    params = parse(settings.database_url)
    name = params.pop("database")
    # timeout: under gevent more requests than connections may run at once; they queue for one
    pool = _Pool(name, max_connections=32, stale_timeout=300, timeout=30, **params)
    pool.prepare = settings.pg_prepare
    return pool


def make_database(settings: Settings) -> peewee.Database:
    """A database object for `settings.database_url` (sqlite:///path or postgresql://...)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        # sqlite:///relative.db, sqlite:////abs/path.db, sqlite:///:memory:
        return sqlite_writer.open_database(settings, url.split(":///", 1)[1])
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
    marked closed, or whose server closed it (`_Pool`), when it is next checked out, so requests
    succeed again once the server is back.
    """
    failures = [e for e in _chain(exc) if isinstance(e, (peewee.OperationalError, peewee.InterfaceError))]
    if not failures or failures[0] is not exc:
        return None
    # the first failure is the cause: a failed write is followed by a failed ROLLBACK ("cannot rollback
    # - no transaction is active" after SQLite's own rollback on a full disk, "connection already closed")
    text = " ".join(str(failures[-1]).split()) or type(failures[-1]).__name__  # psycopg2's span lines
    if any(marker in str(e) for e in failures for marker in _DISK_FULL):
        return sqlite_writer.disk_full(text)
    return Unavailable(f"database unavailable: {text}")


def _failed(exc: peewee.OperationalError | peewee.InterfaceError) -> BeadwireError:
    """`storage_error` of a failure of the database caught as such, which is never None."""
    error = storage_error(exc)
    assert error is not None  # `exc` is a database failure and the first of its own chain
    return error


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
        # the database itself, not through the proxy: each proxied call is a failed attribute lookup
        # and a `__getattr__` first, and these two run on every request
        database.obj.connect(reuse_if_open=True)
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        raise _failed(exc) from exc


def close() -> None:
    """Return this thread's connection to the pool."""
    db = database.obj
    if not db.is_closed():
        db.close()


@contextmanager
def transaction(on_commit: Callable[[], None] | None = None) -> Iterator[UnitOfWork]:
    """One write transaction, yielding its unit of work (store/unit.py); on SQLite it takes the write
    lock up front (BEGIN IMMEDIATE).

    The outermost transaction of a request carrying an `Idempotency-Key` inserts the key's row first
    thing inside it (`UnitOfWork.start`), so that row commits or rolls back with the fact.

    `on_commit` runs once the outermost transaction committed, before it is waited on to be durable
    (SQLite's group commit): what every other connection can read already may be announced then
    (chat wakes its waiter), while this caller's own answer still waits for the disk.
    """
    db = database.obj  # not through the proxy (see `connect`)
    writer = sqlite_writer.current() if isinstance(db, peewee.SqliteDatabase) else None
    outermost = db.transaction_depth() == 0
    scope = unit.scope()
    work = scope.begin(outermost)
    try:
        with writer.hold() if writer is not None else nullcontext(), db.atomic():
            work.start()
            yield work
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        # InterfaceError: the connection died mid-transaction and the ROLLBACK could not even be sent
        scope.end(work, False)
        raise _failed(exc) from exc
    except BaseException:
        scope.end(work, False)
        raise
    scope.end(work, True)
    try:
        if outermost and on_commit is not None:
            on_commit()
    finally:  # whatever `on_commit` did, the caller returns only once its commit is durable
        if outermost and writer is not None:
            writer.make_durable()


def ping() -> str:
    """'ok' when a trivial query succeeds, else the error text."""
    try:
        database.execute_sql("SELECT 1").fetchone()
        return "ok"
    except peewee.PeeweeException as exc:
        return f"error: {exc}"
