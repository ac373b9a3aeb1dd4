"""Database failures become our errors: a lost or refused connection is 503 `unavailable`, a full disk
507 `storage_full`, each with a message; never a 500. The fault tests (tests/test_faults.py) show it on
real servers; these pin the mapping itself.
"""

from __future__ import annotations

import peewee
import pytest

from store.db import storage_error
from store.errors import StorageFull, Unavailable


def _raised(first: BaseException, then: BaseException | None = None) -> BaseException:
    """The exception a caller sees when `then` is raised while handling `first` (a failed ROLLBACK)."""
    try:
        try:
            raise first
        except BaseException:
            if then is None:
                raise
            raise then  # noqa: B904 - the implicit context (__context__) is the point
    except BaseException as exc:  # noqa: BLE001
        return exc


def test_a_full_sqlite_disk_is_storage_full_even_behind_a_failed_rollback():
    seen = _raised(peewee.OperationalError("database or disk is full"),
                   peewee.OperationalError("cannot rollback - no transaction is active"))
    error = storage_error(seen)
    assert isinstance(error, StorageFull)
    assert error.status_code == 507 and error.code == "storage_full"
    assert "database or disk is full" in error.message and "free space" in error.message


def test_a_full_postgres_disk_is_storage_full():
    full = peewee.OperationalError('could not extend file "base/1/2": No space left on device')
    error = storage_error(full)
    assert isinstance(error, StorageFull)


def test_a_connection_lost_mid_transaction_is_unavailable_and_names_the_first_failure():
    lost = peewee.OperationalError("server closed the connection unexpectedly\n\tThis probably means")
    seen = _raised(lost, peewee.InterfaceError("connection already closed"))
    error = storage_error(seen)
    assert type(error) is Unavailable and error.status_code == 503
    assert error.message == (
        "database unavailable: server closed the connection unexpectedly This probably means")


@pytest.mark.parametrize("exc", [ValueError("nope"), peewee.IntegrityError("UNIQUE constraint failed"),
                                 _raised(peewee.OperationalError("locked"), KeyError("later"))])
def test_anything_else_is_not_a_storage_error(exc):
    assert storage_error(exc) is None


def test_a_database_failure_outside_a_transaction_answers_503_with_a_message(app):
    def read_fails():
        raise peewee.InterfaceError("connection already closed")

    app.add_url_rule("/v1/_test_read_fails", "read_fails", read_fails)
    answer = app.test_client().get("/v1/_test_read_fails")
    assert answer.status_code == 503
    assert answer.get_json() == {"error": {"code": "unavailable",
                                           "message": "database unavailable: connection already closed"}}


def test_new_mail_still_reaches_the_banner_when_saving_last_seen_fails(app, make_agent, monkeypatch):
    import json
    from contextlib import contextmanager

    from store import workspaces

    ana, bob = make_agent(project="touchy", alias="ana"), make_agent(project="touchy", alias="bob")
    ana.post("/mail", {"to": "bob", "body": "read me once"})
    st = app.extensions["beadwire"]
    st.redis.client.delete(st.redis.keys.touch_key(bob.info["project"]["id"], bob.info["workspace"]["id"]))

    @contextmanager
    def down():
        raise Unavailable("database unavailable: the server is restarting")
        yield

    monkeypatch.setattr(workspaces.db, "transaction", down)  # writes fail: last_seen cannot be saved
    answer = bob.get("/whoami")
    monkeypatch.undo()
    assert [item["text"] for item in json.loads(answer.headers["X-Wire-Banner"])["new"]] == ["read me once"]
