"""The machine's ceiling for a durable write over HTTP: the least a mail endpoint could do.

`POST /mail` parses the JSON body, commits one row in its own SQLite WAL transaction with
`synchronous=FULL` (one fsync per commit), writers queued on a thread lock plus `flock` as in
store/db.py (SQLite's own busy handler sleeps with backoff and would understate the ceiling), XADDs its id to a Redis stream and answers 201 with the id.
No authentication, presence, rate limit, validation, recipient lookup or outbox: everything a
beadwire mail does on top of this is extra. bench.py serves it with the same gunicorn settings as
`wire serve` and drives it with the same client as the mail rows, in the same run, so the
`ceiling` row says how far any Flask + gunicorn + SQLite + Redis server can go on this machine now.

    CEILING_DB=/tmp/c.db REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -k gthread "bench.ceiling_app:app"
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import sys
import threading

import redis
from flask import Flask, jsonify, request

app = Flask(__name__)
sys.setswitchinterval(0.001)  # as web/__init__.py: the lock holder gets the GIL back sooner
_local = threading.local()
_redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
_path = os.environ.get("CEILING_DB", "ceiling.db")
_mutex = threading.Lock()
_lock_fd = os.open(_path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)


def _conn() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(_path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS mail (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        _local.conn = conn
    return conn


@app.post("/mail")
def mail():
    body = request.get_json()
    conn = _conn()
    with _mutex:
        fcntl.flock(_lock_fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                mail_id = conn.execute("INSERT INTO mail (body) VALUES (?)", (json.dumps(body),)).lastrowid
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            fcntl.flock(_lock_fd, fcntl.LOCK_UN)
    _redis.xadd("ceiling:mail", {"id": mail_id})
    return jsonify(id=mail_id), 201


@app.get("/v1/health")  # the bench client warms each connection with it
def health():
    return "ok"
