"""Deployment: the Procfile run by a Procfile runner (honcho) exactly as a Heroku-style platform runs
it, configured only by environment variables; and schema migrations that keep an old database's data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.servers import _spawn, free_port

ROOT = Path(__file__).resolve().parents[1]
#: Talks to 127.0.0.1 directly even when the environment sets HTTP_PROXY.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def procfile() -> dict[str, str]:
    """The Procfile's process types and their commands."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name.strip(): command.strip() for name, command in (line.split(":", 1) for line in lines if line)}


def call(url: str, method: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body or {}).encode() if method != "GET" else None
    request = urllib.request.Request(f"{url}/v1{path}", data=data, headers=headers, method=method)
    try:
        with _direct.open(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


def wait_for(condition, what: str, timeout: float = 60.0, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text()[-4000:] if log else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")
        time.sleep(0.1)


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries `marker` (everything honcho started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def platform_env(tmp_path, pg_server) -> dict[str, str]:
    """What a platform sets: add-on URLs, the port, the sizes; nothing else beadwire-specific."""
    from tests.servers import start_redis

    redis = start_redis(tmp_path)
    database_url = pg_server.create_database(f"honcho_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    bin_dir = os.path.dirname(sys.executable)  # gunicorn and dramatiq, as the platform's PATH has them
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEADWIRE_", "WIRE_"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PORT")}
    env.update({"PATH": bin_dir + os.pathsep + env.get("PATH", ""), "DATABASE_URL": database_url,
                "REDIS_URL": redis.url, "PORT": str(free_port()), "WEB_CONCURRENCY": "2",
                "WEB_CONNECTIONS": "1000",
                "WEB_HOST": "127.0.0.1", "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1",
                # one gunicorn control socket per $HOME would clash between test runs (gunicorn >= 25.1)
                "GUNICORN_CMD_ARGS": "--no-control-socket", "HONCHO_TEST_MARKER": uuid.uuid4().hex})
    yield env
    redis.stop()


def test_the_procfile_runs_under_honcho_configured_only_by_the_environment(tmp_path, platform_env):
    env = platform_env
    # the platform's release phase first (honcho has none): the Procfile's own `release` command
    release = subprocess.run(procfile()["release"], shell=True, cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert release.returncode == 0, release.stdout + release.stderr
    assert re.search(r"schema at version \d+", release.stdout)

    log = tmp_path / "honcho.log"
    args = [sys.executable, "-m", "honcho", "start", "--no-colour", "-f", str(ROOT / "Procfile"),
            "web", "worker", "clock"]
    honcho = _spawn(args, log, signal.SIGTERM, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_for(lambda: call(url, "GET", "/health")[0] == 200, "the web process to answer /v1/health",
                 log=log)
        shop = {"project": "shop", "repo_origin": "git@github.com:acme/shop.git"}
        status, ana = call(url, "POST", "/init", {**shop, "alias": "ana"})
        assert status == 201, ana
        status, bob = call(url, "POST", "/init", {**shop, "alias": "bob"}, token=ana["project_key"])
        assert status == 201, bob
        status, bead = call(url, "POST", "/beads", {"title": "deploy me"}, token=ana["token"])
        assert status == 201, bead
        assert call(url, "POST", f"/beads/{bead['id']}/claim", token=ana["token"])[0] == 200
        status, refused = call(url, "POST", f"/beads/{bead['id']}/claim", token=bob["token"])
        assert status == 409 and "ana" in refused["error"]["message"]
        assert call(url, "POST", "/mail", {"to": "bob", "body": "hi"}, token=ana["token"])[0] == 201
        # the worker (a real Dramatiq process on REDIS_URL) confirms deliveries: the outbox drains
        def metrics() -> str:
            return _direct.open(url + "/metrics", timeout=10).read().decode()

        wait_for(lambda: "\nbeadwire_outbox_undelivered 0\n" in metrics(), "the clock and worker to confirm "
                 "every outbox delivery", timeout=60, log=log)
        assert 'beadwire_http_requests_total{method="POST",route="/v1/init",status="201"} 2' in metrics()
    finally:
        honcho.send_signal(signal.SIGTERM)  # as the platform does; honcho stops every process
        try:
            honcho.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            pytest.fail(f"honcho did not stop within 60 s\n{log.read_text()[-4000:]}")
    wait_for(lambda: not processes_with(env["HONCHO_TEST_MARKER"]), "every Procfile process to exit",
             timeout=30, log=log)

    output = log.read_text()
    lines = [line.split(" | ", 1)[1] for line in output.splitlines()
             if re.match(r"^\S+ web\.1\s+\| \{", line)]
    access = [json.loads(line) for line in lines if '"logger": "beadwire.access"' in line]
    assert {(a["method"], a["path"], a["status"]) for a in access} >= {("POST", "/v1/init", 201),
                                                                        ("GET", "/v1/health", 200)}
    assert all({"ts", "level", "logger", "msg", "ms", "request_id"} <= set(a) for a in access)
    assert {a["process_kind"] for a in access} == {"web"}
    worker_lines = [line.split(" | ", 1)[1] for line in output.splitlines()
                    if re.match(r"^\S+ worker\.1\s+\| \{", line)]
    assert worker_lines and all(json.loads(line)["process_kind"] == "worker" for line in worker_lines)
    for secret in (ana["token"], bob["token"], ana["project_key"]):
        assert secret not in output


# ------------------------------------------------------------------------------------------ migrations

DATA = Path(__file__).parent / "data"
OLD_KEY, ANA_TOKEN, BOB_TOKEN = "bw_pk_" + "k" * 43, "bw_ws_" + "a" * 43, "bw_ws_" + "b" * 43
ORIGIN = "git@github.com:acme/shop.git"


def _build_version_3(database_url: str, more_aliases: tuple[str, ...] = ()) -> None:
    """A database as a version-3 beadwire left it: its tables (tests/data/schema_v3.*.sql) and data
    (workspaces ana and bob, then one per `more_aliases`, whose tokens are `token_of(alias)`)."""
    from store import db
    from store.config import Settings
    from store.repos import normalise_origin
    from store.util import hash_secret

    dialect = "sqlite" if database_url.startswith("sqlite") else "postgres"
    db.init_db(Settings.from_env({"DATABASE_URL": database_url, "BEADWIRE_DATA_DIR": "/nonexistent"}))
    ddl = "\n".join(line for line in (DATA / f"schema_v3.{dialect}.sql").read_text().splitlines()
                    if not line.startswith("--"))
    statements = [s.strip() for s in ddl.split(";\n") if s.strip().rstrip(";")]
    statements = [s.rstrip(";") for s in statements]
    p, ts = db.database.param, time.time()

    def insert(table: str, **values: object) -> None:
        columns = ", ".join(f'"{c}"' for c in values)
        db.database.execute_sql(f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join([p] * len(values))})',
                                list(values.values()))

    with db.database.connection_context(), db.database.atomic():
        for statement in statements:
            db.database.execute_sql(statement)
        for version in (1, 2, 3):
            insert("schema_version", id=version, version=version, applied_ts=ts)
        insert("project", id=1, slug="shop", name="shop", key_hash=hash_secret(OLD_KEY),
               stale_claim_seconds=None, created_ts=ts)
        insert("repo", id=1, project_id=1, canonical=normalise_origin(ORIGIN), name="shop", prefix="bd")
        extra = [(3 + i, alias, token_of(alias)) for i, alias in enumerate(more_aliases)]
        for ws_id, alias, token in ((1, "ana", ANA_TOKEN), (2, "bob", BOB_TOKEN), *extra):
            insert("workspace", id=ws_id, project_id=1, repo_id=1, alias=alias, role="developer", human="",
                   hostname="old-host", path="/src/shop", token_hash=hash_secret(token), created_ts=ts,
                   last_seen_ts=ts, revoked=False)
        insert("bead", id=1, project_id=1, repo_id=1, ref="bd-old1", title="written by version 3",
               description="", status="open", priority=2, issue_type="task", assignee="", labels="[]",
               created_ts=ts, updated_ts=ts, defer_ts=None, data="{}", digest="0" * 64)
        insert("claim", id=1, project_id=1, bead_id=1, workspace_id=1, claimed_ts=ts, reason="", stale=False)
        insert("message", id=1, project_id=1, kind="mail", sender_id=1, thread="",
               subject="before the upgrade", body="still here?", priority="normal", data="{}", created_ts=ts)
        insert("delivery", id=1, message_id=1, recipient_id=2, project_id=1, acked_ts=None)
        if dialect == "postgres":  # explicit ids: move the sequences past them, as the old app's inserts had
            for table in ("schema_version", "project", "repo", "workspace", "bead", "claim", "message",
                          "delivery"):
                db.database.execute_sql(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                        f"(SELECT MAX(id) FROM \"{table}\"))")
    db.database.close()


def token_of(alias: str) -> str:
    from store.util import hash_secret

    return "bw_ws_" + hash_secret(alias)[:43]


def test_upgrading_renames_aliases_that_clash_whatever_their_case_and_keeps_their_tokens(
        settings, database_url, real_redis):
    from tests.conftest import _make_app

    _build_version_3(database_url, more_aliases=("Ana", "ANA", "bob\n", "Ｃｙ", "cy"))
    app = _make_app(settings.with_(database_url=database_url), real_redis)  # migrates, as `release` does
    client = app.test_client()

    def alias(token: str) -> str:
        r = client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.json
        return r.json["alias"]

    assert [alias(t) for t in (ANA_TOKEN, BOB_TOKEN)] == ["ana", "bob"]  # the oldest keep theirs
    renamed = [alias(token_of(a)) for a in ("Ana", "ANA", "bob\n", "Ｃｙ", "cy")]
    assert renamed == ["Ana-2", "ANA-3", "bob-2", "Cy", "cy-2"]
    joined = client.post("/v1/init", json={"project": "shop", "repo_origin": ORIGIN, "alias": "CY"},
                         headers={"Authorization": f"Bearer {OLD_KEY}"})
    assert joined.status_code == 409 and joined.json["error"]["code"] == "alias_taken"


def test_upgrading_a_version_3_database_keeps_its_data(settings, database_url, real_redis):
    from store import db
    from store.models import SCHEMA_VERSION
    from store.schema import current_version, migrate
    from tests.conftest import _make_app

    _build_version_3(database_url)
    app = _make_app(settings.with_(database_url=database_url), real_redis)  # migrates, as `release` does
    client = app.test_client()
    with db.database.connection_context():
        assert current_version() == SCHEMA_VERSION
        assert migrate() == SCHEMA_VERSION  # a second release is a no-op

    def get(path: str, token: str):
        return client.get(f"/v1{path}", headers={"Authorization": f"Bearer {token}"})

    shown = get("/beads/bd-old1", ANA_TOKEN)
    assert shown.status_code == 200, shown.json
    assert shown.json["title"] == "written by version 3" and shown.json["claim"]["alias"] == "ana"
    mail = get("/mail?unread=1", BOB_TOKEN)
    assert [(m["subject"], m["body"]) for m in mail.json] == [("before the upgrade", "still here?")]
    # the old project key still admits workspaces, and new rows follow the old ones
    joined = client.post("/v1/init", json={"project": "shop", "repo_origin": ORIGIN, "alias": "cy"},
                         headers={"Authorization": f"Bearer {OLD_KEY}"})
    assert joined.status_code == 201, joined.json
    created = client.post("/v1/beads", json={"title": "written after"},
                          headers={"Authorization": f"Bearer {ANA_TOKEN}"})
    assert created.status_code == 201, created.json
    assert get("/mail?unread=1", BOB_TOKEN).json[0]["id"] == 1


def test_an_upgraded_database_has_the_indexes_of_a_new_one(database_url, tmp_path, request):
    from store import db
    from store.config import Settings
    from store.schema import REDUNDANT_INDEXES, migrate

    def indexes(url: str) -> set[tuple[str, str, tuple[str, ...], bool]]:
        db.init_db(Settings.from_env({"DATABASE_URL": url, "BEADWIRE_DATA_DIR": str(tmp_path)}))
        with db.database.connection_context():
            migrate()
            found = {(i.name, i.table, tuple(i.columns), i.unique)
                     for table in db.database.get_tables() for i in db.database.get_indexes(table)}
        db.database.close()
        return found

    _build_version_3(database_url)
    fresh_url = (f"sqlite:///{tmp_path / 'fresh.db'}" if database_url.startswith("sqlite") else
                 request.getfixturevalue("pg_server").create_database(f"fresh_{uuid.uuid4().hex}"))
    upgraded, fresh = indexes(database_url), indexes(fresh_url)
    assert upgraded == fresh
    assert ("claim_project_id_workspace_id", "claim", ("project_id", "workspace_id"), False) in fresh
    assert not {name for name, *_ in fresh} & set(REDUNDANT_INDEXES)  # schema 13 dropped them


# ------------------------------------------------------------------------------------ configuration


def test_deployment_settings_come_from_the_environment():
    from store.config import ConfigError, Settings

    s = Settings.from_env({"REDIS_URL": "redis://10.0.0.5:7000/0", "BEADWIRE_REDIS_CLUSTER": "1",
                           "LOG_FORMAT": "JSON", "BEADWIRE_METRICS_TOKEN": "t0k"})
    assert (s.redis_cluster, s.log_format, s.metrics_token) == (True, "json", "t0k")
    assert Settings.from_env({}).redis_cluster is False and Settings.from_env({}).log_format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="REDIS_URL"):  # a bundled single Redis cannot be a cluster
        Settings.from_env({"BEADWIRE_REDIS_CLUSTER": "1"})


def test_the_broker_namespace_is_one_hash_slot_on_a_cluster():
    from redis.cluster import key_slot

    from store.keys import Keys

    keys = Keys("bw")
    assert keys.broker_namespace() == "bw:dramatiq"  # unchanged on a single Redis: queued messages stay
    tagged = keys.broker_namespace(cluster=True)
    # dramatiq's Lua derives every queue key from the namespace: all must share its slot
    derived = [f"{tagged}:default", f"{tagged}:default.msgs", f"{tagged}:default.DQ.msgs",
               f"{tagged}:__heartbeats__", f"{tagged}:__acks__.worker-1.default"]
    assert {key_slot(k.encode()) for k in [tagged, *derived]} == {key_slot(tagged.encode())}
