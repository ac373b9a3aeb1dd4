"""The PostgreSQL pool (store/db.py) on a throwaway cluster: a connection handed out costs no round trip,
and one the server dropped (terminated backend, restarted server) is found and replaced on checkout, so
the request that gets it succeeds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import peewee
import psycopg2.extensions
import pytest

from store import db
from store.config import Settings

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


def test_a_connection_the_server_terminated_is_replaced_on_checkout(pool, pg_server):
    first = _backend_pid()
    pg_server.sql(f"SELECT pg_terminate_backend({first})")
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
