"""The PostgreSQL pool (store/db.py) on a throwaway cluster: a connection handed out costs no round trip,
and one the server dropped (terminated backend, restarted server) is found and replaced on checkout, so
the request that gets it succeeds."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import peewee
import psycopg2.extensions
import pytest

from store import db, queries
from store.config import Settings
from store.schema import migrate

pytestmark = pytest.mark.pg


_names = iter(range(1, 1_000_000))


@contextmanager
def _bound(settings: Settings, url: str) -> Iterator[peewee.Database]:
    """store.db's proxy bound to a fresh pool on `url` for the block."""
    database = db.make_database(settings.with_(database_url=url))
    previous = db.database.obj
    db.database.initialize(database)
    try:
        yield database
    finally:
        database.close_all()
        db.database.initialize(previous)


@pytest.fixture
def pool(settings: Settings, pg_server: Any) -> Iterator[peewee.Database]:
    with _bound(settings, pg_server.create_database(f"pool{os.getpid()}_{next(_names)}")) as database:
        yield database


class _Recorded(psycopg2.extensions.cursor):
    """A cursor that records every statement sent through it, the pool's own checks included."""

    sent: ClassVar[list[str]] = []

    def execute(self, query: Any, vars: Any = None) -> None:
        self.sent.append(query)
        super().execute(query, vars)


def _backend_pid() -> int:
    db.connect()
    try:
        return db.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    finally:
        db.close()


def test_a_pooled_connection_is_handed_out_without_a_round_trip(pool):
    pool.connect_params["cursor_factory"] = _Recorded
    first = _backend_pid()
    _Recorded.sent.clear()
    assert _backend_pid() == first  # the same connection, from the pool
    assert _Recorded.sent == ["SELECT pg_backend_pid()"]


def test_a_connection_past_descriptor_1023_is_handed_out_without_a_round_trip(pool):
    """A long-running process holds many files: select() refuses a descriptor past 1023, poll() does
    not, so such a connection is still checked without asking the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1200, hard), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        pool.connect_params["cursor_factory"] = _Recorded
        first = _backend_pid()
        db.connect()
        try:
            assert pool.connection().fileno() > 1023
        finally:
            db.close()
        _Recorded.sent.clear()
        assert _backend_pid() == first
        assert _Recorded.sent == ["SELECT pg_backend_pid()"]
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connection_the_server_terminated_is_replaced_on_checkout(pool, pg_server):
    first = _backend_pid()
    pg_server.sql(f"SELECT pg_terminate_backend({first}, 10000)")  # returns once the backend is gone
    second = _backend_pid()  # no error: the dead connection was found and a new one opened
    assert second != first


def test_after_a_postgres_restart_requests_succeed_again_on_new_connections(settings, tmp_path):
    from tests.servers import start_postgres

    pg = start_postgres(tmp_path)  # our own cluster: the session's is shared with other tests
    try:
        with _bound(settings, pg.create_database("restart")):
            first = _backend_pid()
            pg.halt()
            pg.start()
            assert _backend_pid() != first  # the first request after the restart succeeds
    finally:
        pg.stop()


# -------------------------------------------------------------------------------- the deferred BEGIN


@pytest.fixture
def table(pool: peewee.Database) -> Iterator[peewee.Database]:
    """The pool, a table `t` with a unique column, and statements recorded from here on."""
    pool.execute_sql("CREATE TABLE t (id serial PRIMARY KEY, v text UNIQUE)")
    pool.close()
    pool.close_idle()
    pool.connect_params["cursor_factory"] = _Recorded
    _Recorded.sent.clear()
    yield pool


def _values(pool: peewee.Database) -> list[str]:
    return [v for (v,) in pool.execute_sql("SELECT v FROM t ORDER BY id").fetchall()]


def test_a_transaction_sends_its_begin_with_its_first_statement(table):
    with table.atomic():
        table.execute_sql("INSERT INTO t (v) VALUES (%s)", ("a",))
        table.execute_sql("INSERT INTO t (v) VALUES (%s)", ("b",))
    insert = "INSERT INTO t (v) VALUES (%s)"
    assert _Recorded.sent == [f"BEGIN; {insert}", insert, "COMMIT"]
    assert _values(table) == ["a", "b"]


def test_a_transaction_that_sent_nothing_sends_no_begin_and_no_commit(table):
    with table.atomic():
        pass
    with pytest.raises(KeyError), table.atomic():
        raise KeyError("before any statement")
    assert _Recorded.sent == []


def test_a_failed_statement_rolls_back_the_whole_transaction_and_the_connection_serves_on(table):
    table.execute_sql("INSERT INTO t (v) VALUES ('taken')")
    with pytest.raises(peewee.IntegrityError), table.atomic():
        table.execute_sql("INSERT INTO t (v) VALUES ('first')")
        table.execute_sql("INSERT INTO t (v) VALUES ('taken')")
    with pytest.raises(peewee.IntegrityError), table.atomic():  # the first statement itself fails
        table.execute_sql("INSERT INTO t (v) VALUES ('taken')")
    assert _Recorded.sent.count("ROLLBACK") == 2
    assert _values(table) == ["taken"]


def test_a_failed_savepoint_keeps_the_outer_transaction(table):
    with table.atomic():
        with pytest.raises(peewee.IntegrityError), table.atomic():  # the savepoint is the first statement
            table.execute_sql("INSERT INTO t (v) VALUES ('x')")
            table.execute_sql("INSERT INTO t (v) VALUES ('x')")
        table.execute_sql("INSERT INTO t (v) VALUES ('y')")
    assert _Recorded.sent[0].startswith("BEGIN; SAVEPOINT")
    assert _values(table) == ["y"]  # the savepoint's rows went with it, the outer one's stayed


def test_statements_after_a_transaction_run_in_autocommit_again(table):
    with table.atomic():
        table.execute_sql("INSERT INTO t (v) VALUES ('in')")
    table.execute_sql("INSERT INTO t (v) VALUES ('out')")
    assert table.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert _Recorded.sent == ["BEGIN; INSERT INTO t (v) VALUES ('in')", "COMMIT",
                              "INSERT INTO t (v) VALUES ('out')"]


def test_a_transaction_opened_before_connecting_connects_first(table):
    table.close()
    with table.atomic():
        table.execute_sql("INSERT INTO t (v) VALUES ('late')")
    assert _values(table) == ["late"]


# ------------------------------------------------------------------------ the prepared named statements


def test_a_named_statement_is_prepared_once_per_connection_and_again_on_a_new_one(table, pg_server):
    find = queries.Statement('SELECT "id" FROM "t" WHERE "v" = ?')
    table.execute_sql("INSERT INTO t (v) VALUES ('a')")
    _Recorded.sent.clear()
    assert find.one(("a",)) == (1,)
    assert find.one(("b",)) is None
    assert _Recorded.sent == [f'PREPARE {find.name} AS SELECT "id" FROM "t" WHERE "v" = $1',
                              f"EXECUTE {find.name}(%s)", f"EXECUTE {find.name}(%s)"]
    backend = table.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    table.close()
    pg_server.sql(f"SELECT pg_terminate_backend({backend}, 10000)")
    _Recorded.sent.clear()
    assert find.one(("a",)) == (1,)  # a new connection (the dead one failed the pool's check): prepared there
    assert _Recorded.sent[-2:] == [f'PREPARE {find.name} AS SELECT "id" FROM "t" WHERE "v" = $1',
                                   f"EXECUTE {find.name}(%s)"]


def test_a_statement_first_prepared_in_a_failed_transaction_runs_afterwards(table):
    add = queries.Insert('INSERT INTO "t" ("v") VALUES (?)')
    table.execute_sql("INSERT INTO t (v) VALUES ('taken')")
    with pytest.raises(peewee.IntegrityError), table.atomic():
        add.insert(("taken",))  # prepared, then its run fails and the transaction rolls back
    with table.atomic():
        assert add.insert(("free",)) == 3  # still prepared on the connection (PREPARE is not transactional)
    assert [s for s in _Recorded.sent if "PREPARE" in s] == [
        f'BEGIN; PREPARE {add.name} AS INSERT INTO "t" ("v") VALUES ($1) RETURNING "id"']
    assert _values(table) == ["taken", "free"]


def test_every_named_statement_prepares_on_the_schema(settings, pg_server):
    """PostgreSQL infers each `$n`'s type at PREPARE: one it cannot type (`? IS NULL`) fails here."""
    with _bound(settings, pg_server.create_database(f"prep{os.getpid()}_{next(_names)}")) as database:
        migrate()
        statements = [s for s in vars(queries).values() if isinstance(s, queries.Statement)]
        assert statements
        for statement in statements:
            database.execute_sql(f"PREPARE {statement.name} AS {statement.numbered}")


def test_with_prepare_off_named_statements_run_plain(settings, pg_server):
    """BEADWIRE_PG_PREPARE=0 (a pooler in transaction mode): no statement is left prepared on a server
    connection, which the pooler may hand to another client next."""
    off = Settings.from_env({"BEADWIRE_PG_PREPARE": "0", "BEADWIRE_DATA_DIR": settings.data_dir})
    assert off.pg_prepare is False
    with _bound(off, pg_server.create_database(f"plain{os.getpid()}_{next(_names)}")) as database:
        database.execute_sql("CREATE TABLE t (id serial PRIMARY KEY, v text UNIQUE)")
        add = queries.Insert('INSERT INTO "t" ("v") VALUES (?)')
        find = queries.Statement('SELECT "id" FROM "t" WHERE "v" = ?')
        with database.atomic():
            assert add.insert(("a",)) == 1
        assert find.one(("a",)) == (1,)
        assert find.one(("b",)) is None
        assert database.execute_sql("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


# --------------------------------------------------------- rows whose answer nobody reads (`Statement.defer`)


@pytest.fixture
def logged(table: peewee.Database) -> tuple[queries.Statement, queries.Insert]:
    """A log-row statement (deferred) and an insert answering its id, both prepared on the connection."""
    log = queries.Statement('INSERT INTO "t" ("v") VALUES (?)')
    add = queries.Insert('INSERT INTO "t" ("v") VALUES (?)')
    log.cursor(("prepare log",))
    add.insert(("prepare add",))
    table.execute_sql("DELETE FROM t")
    _Recorded.sent.clear()
    return log, add


def test_a_deferred_row_goes_out_with_the_next_statement_in_order(table, logged):
    log, add = logged
    with table.atomic():
        log.defer(("logged",))
        log.defer(("logged too",))
        add.insert(("added",))
    assert _Recorded.sent == [
        f"BEGIN; EXECUTE {log.name}(%s); EXECUTE {log.name}(%s); EXECUTE {add.name}(%s)", "COMMIT"]
    assert _values(table) == ["logged", "logged too", "added"]


def test_a_deferred_row_left_at_the_end_goes_out_with_the_commit(table, logged):
    log, add = logged
    with table.atomic():
        add.insert(("added",))
        log.defer(("logged",))
    with table.atomic():  # nothing but a log row: BEGIN, the row and COMMIT in one round trip
        log.defer(("alone",))
    assert _Recorded.sent == [f"BEGIN; EXECUTE {add.name}(%s)", f"EXECUTE {log.name}(%s); COMMIT",
                              f"BEGIN; EXECUTE {log.name}(%s); COMMIT"]
    assert _values(table) == ["added", "logged", "alone"]


def test_a_deferred_row_that_fails_fails_its_transaction_before_it_commits(table, logged):
    log, add = logged
    table.execute_sql("INSERT INTO t (v) VALUES ('taken')")
    with pytest.raises(peewee.IntegrityError), table.atomic():
        add.insert(("mine",))
        log.defer(("taken",))  # the unique violation comes back from the COMMIT's round trip
    with pytest.raises(peewee.IntegrityError), table.atomic():
        log.defer(("taken",))
        add.insert(("after",))  # ... or from the next statement's
    assert _values(table) == ["taken"]  # neither transaction left a row
    assert table.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with table.atomic():
        add.insert(("serves on",))
    assert _values(table) == ["taken", "serves on"]


def test_a_rolled_back_transaction_never_sends_its_deferred_rows(table, logged):
    log, add = logged
    with pytest.raises(KeyError), table.atomic():
        add.insert(("undone",))
        log.defer(("never sent",))
        raise KeyError("the view failed")
    assert not any(f"EXECUTE {log.name}" in s for s in _Recorded.sent)
    assert _values(table) == []


def test_a_statement_without_parameters_after_a_deferred_row_sees_it(table, logged):
    log, _ = logged
    with table.atomic():
        log.defer(("counted",))
        # psycopg2 fills `%s` in the whole string: the deferred row goes alone, before it
        assert table.execute_sql("SELECT count(*) FROM t").fetchone() == (1,)
    assert _Recorded.sent == [f"BEGIN; EXECUTE {log.name}(%s)", "SELECT count(*) FROM t", "COMMIT"]


def test_outside_a_transaction_a_deferred_row_runs_at_once(table, logged):
    log, _ = logged
    log.defer(("now",))
    assert _Recorded.sent == [f"EXECUTE {log.name}(%s)"]
    assert _values(table) == ["now"]
