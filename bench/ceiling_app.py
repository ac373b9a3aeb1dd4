"""The machine's ceiling for a durable write over HTTP: the least a mail endpoint could do.

Two routes, served by bench/ours.py under gunicorn's gthread worker (2 workers × 32 threads: the bare
endpoint the targets divide by) and driven with the same client as the mail rows, in the same run:

* `POST /mail` (bare): parses the JSON body, commits one row in its own SQLite WAL transaction with
  `synchronous=FULL` (one fsync per commit; writers queued on a thread lock plus `flock` as in
  store/sqlite_writer.py, since SQLite's own busy handler sleeps with backoff and would understate the
  ceiling), XADDs its id to a Redis stream and answers 201 with the id. No authentication,
  presence, rate limit, validation, recipient lookup or outbox.
* `POST /mail-min` (minimal): what no mail with beadwire's guarantees can skip, written straight on
  `sqlite3` and redis-py: look the bearer token's hash up, one Lua call that refuses a revoked token,
  takes from a rate bucket and marks the sender present, then one transaction with the message,
  its delivery and its outbox row, then one Lua call that publishes it once (dedupe key, mailbox
  stream, project event stream). No ORM, schema validation, recipient resolution, idempotency keys,
  banner or metrics.

So the `ceiling` rows say how far any Flask + gunicorn + SQLite + Redis server can go on this
machine now, and how much of that a mail's unavoidable work leaves.

Served by gevent as `wire serve` serves beadwire (bench/ours.py's second variant: `-c
python:web.gunicorn_conf`, i.e. web/worker.py's gevent worker class, 2 workers, 10,000 connections each),
both routes commit the way the store does in that process instead, so that the variant is the bare
endpoint as our stack would serve it, not a strawman: one `sqlite3` call that fsyncs inside COMMIT
would stall every greenlet of the worker for the whole fsync. As the store's default
`BEADWIRE_SQLITE_SYNCHRONOUS=GROUP` (store/sqlite_writer.py, whose `SqliteWriter` it uses): the
connections run `synchronous=NORMAL`, the write lock is the store's (a gevent lock plus `flock`, a
contended `flock` waited for in gevent's thread pool), and once the lock is released each committer
waits for a group fsync of the WAL, run in gevent's thread pool (`store.green.offload`) so that the
other requests of the worker run meanwhile. Connections come from a per-process pool, as Peewee's
pool hands the store one per request (a greenlet-local one would be opened again for every client
connection). The variant is chosen by what the store checks too: whether gevent patched `threading`
(`store.green.active()`). On PostgreSQL the worker has made psycopg2 cooperative (psycogreen), as
for the store. Beside the gthread rows of the same run this says what serving the bare endpoint our
way (worker class and commit mode together) costs or gains it.

With `CEILING_PG` set (a `postgresql://` URL, as `--database postgres` runs), `POST /mail` is the bare
endpoint on PostgreSQL instead: one transaction (BEGIN, one `INSERT ... RETURNING id`, COMMIT: three
round trips, as a Peewee transaction of the store's with one statement) through psycopg2, the driver
the store uses there, on a connection of its own per thread; then the same XADD. `/mail-min` stays on
SQLite (it is not measured on a PostgreSQL run).

    CEILING_DB=/tmp/c.db REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -k gthread "bench.ceiling_app:app"
    CEILING_PG=postgresql://postgres@127.0.0.1:5432/ceiling REDIS_URL=... gunicorn -k gthread ...
    CEILING_DB=/tmp/g.db REDIS_URL=... gunicorn -c python:web.gunicorn_conf "bench.ceiling_app:app"
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import redis
from flask import Flask, jsonify, request

from store import green
from store.sqlite_writer import SqliteWriter

#: The bearer token `/mail-min` accepts (bench/ours.py sets it).
TOKEN = os.environ.get("CEILING_TOKEN", "ceiling-token")

app = Flask(__name__)
sys.setswitchinterval(0.001)  # as web/__init__.py: the lock holder gets the GIL back sooner
_local = threading.local()
_redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
_path = os.environ.get("CEILING_DB", "ceiling.db")
_mutex = threading.Lock()
_lock_fd = os.open(_path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
#: The bare endpoint's PostgreSQL database, when set (else SQLite).
_pg_url = os.environ.get("CEILING_PG", "")
#: Under gevent (the `wire serve` variant), the store's write lock and group commit; else None.
_writer = SqliteWriter(_path, group=True) if green.active() else None
#: Under gevent, idle connections of this process (see `_connection`).
_idle: list[sqlite3.Connection] = []
_PG_SCHEMA = "CREATE TABLE IF NOT EXISTS mail (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mail (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS token (hash TEXT PRIMARY KEY, workspace INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY, sender INTEGER, subject TEXT, body TEXT, "
    "ts REAL)",
    "CREATE TABLE IF NOT EXISTS delivery (id INTEGER PRIMARY KEY, message INTEGER, recipient TEXT, "
    "acked REAL)",
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, kind TEXT, payload TEXT, sent REAL)",
)
# revoked? then rate bucket (fixed window), then presence: one round trip, as store/lua/heartbeat.lua
_BEAT = _redis.register_script("""
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'revoked' end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], 60) end
if n > 100000 then return 'limited' end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return 'ok'
""")
# deliver once: dedupe key, the recipient's mailbox stream, the project's event stream
_PUBLISH = _redis.register_script("""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 86400) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'kind', ARGV[1], 'data', ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'kind', ARGV[1], 'data', ARGV[2])
return 1
""")


def _open() -> sqlite3.Connection:
    conn = sqlite3.connect(_path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=wal")
    # group commit under gevent: a commit writes the WAL, the fsync follows off the hub (`_write`)
    conn.execute("PRAGMA synchronous=FULL" if _writer is None else "PRAGMA synchronous=NORMAL")
    for statement in _SCHEMA:
        conn.execute(statement)
    token_hash = hashlib.sha256(TOKEN.encode()).hexdigest()
    conn.execute("INSERT OR IGNORE INTO token VALUES (?, 1)", (token_hash,))
    return conn


def _conn() -> sqlite3.Connection:
    """This thread's connection (gthread)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _open()
    return conn


@contextlib.contextmanager
def _connection() -> Iterator[sqlite3.Connection]:
    """A connection for one request: the thread's own under gthread; under gevent one from the
    process's pool, opened under the write lock (its schema statements write, and SQLite's busy
    handler would sleep on the hub)."""
    if _writer is None:
        yield _conn()
        return
    if _idle:
        conn = _idle.pop()
    else:
        with _writer.hold():
            conn = _open()
    try:
        yield conn
    finally:
        _idle.append(conn)


def _pg_conn() -> psycopg2.extensions.connection:
    """This thread's PostgreSQL connection (not autocommit: psycopg2 sends BEGIN before the INSERT)."""
    conn = getattr(_local, "pg", None)
    if conn is None:
        conn = _local.pg = psycopg2.connect(_pg_url)
    return conn


def _pg_schema() -> None:
    """The table, made once: gunicorn's workers import this at once, and concurrent CREATE TABLE IF NOT
    EXISTS can fail on PostgreSQL's catalog, so they take turns on an advisory lock."""
    with contextlib.closing(psycopg2.connect(_pg_url)) as conn, conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(19)")
        cur.execute(_PG_SCHEMA)


if _pg_url:
    _pg_schema()


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """The gthread write lock: a thread lock plus `flock`, both waited for in the kernel."""
    with _mutex:
        fcntl.flock(_lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(_lock_fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; under gevent as store/db.py's `transaction()`: the store's lock, then,
    once it is free, the wait for the group fsync (run in gevent's thread pool)."""
    with _locked() if _writer is None else _writer.hold():
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if _writer is not None:
        _writer.make_durable()


@app.post("/mail")
def mail():
    body = request.get_json()
    if _pg_url:
        pg = _pg_conn()
        with pg, pg.cursor() as cur:  # commits on leaving, rolls back on an error
            cur.execute("INSERT INTO mail (body) VALUES (%s) RETURNING id", (json.dumps(body),))
            mail_id = cur.fetchone()[0]
        _redis.xadd("ceiling:mail", {"id": str(mail_id)})
        return jsonify(id=mail_id), 201
    with _connection() as conn, _write(conn):
        mail_id = conn.execute("INSERT INTO mail (body) VALUES (?)", (json.dumps(body),)).lastrowid
    _redis.xadd("ceiling:mail", {"id": str(mail_id)})  # the bytes redis-py sends for the int
    return jsonify(id=mail_id), 201


@app.post("/mail-min")
def mail_min():
    with _connection() as conn:
        return _mail_min(conn)


def _mail_min(conn: sqlite3.Connection) -> tuple[Any, int]:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    row = conn.execute("SELECT workspace FROM token WHERE hash = ?",
                       (hashlib.sha256(token.encode()).hexdigest(),)).fetchone()
    if row is None:
        return jsonify(error="unauthorized"), 401
    sender, ts = row[0], time.time()
    beat = _BEAT(keys=["{p:1}:revoked", f"{{p:1}}:rate:{sender}", "{p:1}:presence", "{p:1}:online"],
                 args=[sender, json.dumps({"ts": ts}), ts])
    if beat != b"ok":
        return jsonify(error=beat.decode()), 429
    body = request.get_json()
    with _write(conn):
        message_id = conn.execute("INSERT INTO message (sender, subject, body, ts) VALUES (?, ?, ?, ?)",
                                  (sender, body["subject"], body["body"], ts)).lastrowid
        delivery_id = conn.execute("INSERT INTO delivery (message, recipient) VALUES (?, ?)",
                                   (message_id, body["to"])).lastrowid
        payload = json.dumps({"id": message_id, "delivery": delivery_id, "from": sender, "ts": ts, **body})
        outbox_id = conn.execute("INSERT INTO outbox (kind, payload) VALUES ('mail', ?)",
                                 (payload,)).lastrowid
    _PUBLISH(keys=[f"{{p:1}}:sent:{outbox_id}", f"{{p:1}}:box:{body['to']}", "{p:1}:events"],
             args=["mail", payload])
    return jsonify(id=message_id, delivery=delivery_id), 201


@app.get("/v1/health")  # the bench client warms each connection with it
def health():
    return "ok"
