"""`GET /v1/ws`: the project's live event feed over a websocket (flask-sock).

Every event of the project's Redis event stream goes out as one JSON text frame
`{"id": "<stream id>", "kind": "...", "data": {...}}`, so a socket on any web process sees what any
other process (or worker) produced. Auth happens before the upgrade: the dashboard session cookie,
or `Authorization: Bearer <workspace token | project key>`. `?since=<stream id>` resumes after that
id (a reconnecting client misses nothing the stream still holds); the default is new events only.
A workspace token, or a read-only dashboard session, gets other workspaces' mail and chat (and, unless a
coordinator, their escalations) as metadata only, as the API would show them (`sessions.redact`).
The loop waits for a wake-up of the event stream (store/wakeups.py) for at most `BLOCK_MS` at a time,
holding no database or Redis connection, so a closed socket is noticed within that bound. Each open
socket holds one greenlet and one waiter slot (store/waiters.py): beyond the caps the upgrade is refused
with 429 and `Retry-After`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, abort, g, request
from flask_sock import Sock

from store import db, sessions, waiters
from store.errors import Unauthorized, Unavailable
from store.humans import HUMAN_TOKEN_PREFIX, authenticate_token
from store.workspaces import authenticate_key
from web.common import bearer, key_or_workspace, store
from web.dashboard_base import same_site

sock = Sock()
bp = Blueprint("ws", __name__)
#: Longest single wait on Redis before the handler checks its socket again.
BLOCK_MS = 2000
#: Seconds between re-checks of a streaming socket's credential (revocation, key rotation, logout).
RECHECK_SECONDS = 5.0
#: Seconds between renewals of an open socket's waiter slot (its lease lasts `waiters.DEFAULT_LEASE`).
RENEW_SECONDS = 30.0
_SINCE = re.compile(r"^\d{1,20}-\d{1,20}$")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    sock.init_app(app)


@bp.before_request
def _authenticate() -> None:
    """Bearer (agents, tools) or the dashboard cookie; refused before the upgrade with a JSON error."""
    if bearer():
        key_or_workspace()
        g.feed_project = g.project.id
        g.feed_viewer = None if g.ws is None else sessions.viewer_of(g.ws)
    else:
        g.feed_project, g.feed_viewer = _cookie_reader()
    g.feed_cursor = _cursor(g.feed_project)
    g.feed_check = _credential_check()
    g.feed_slot = waiters.enter(store(), g.feed_project, _owner())  # last: nothing after it can fail


@bp.teardown_request
def _leave(exc: BaseException | None) -> None:
    slot = g.get("feed_slot")
    if slot is not None:
        slot.leave()  # the socket closed (or never opened): a no-op when the handler left already


def _owner() -> str:
    """Whose waiter cap the socket counts against: the workspace, the project key or the session."""
    if bearer():
        return "key" if g.ws is None else f"w{g.ws.id}"
    return "s" + hashlib.sha256(request.cookies.get("bw_session", "").encode()).hexdigest()[:16]


def _credential_check() -> Callable[[], None]:
    """What re-validates the socket's credential while it streams (raises Unauthorized once it is gone).

    Auth runs once, before the upgrade, but a socket may stay open for hours: a revoked workspace,
    a rotated project key or an ended session must stop the feed too, not only new requests.
    """
    st, project_id = store(), g.feed_project
    if bearer() and g.ws is not None:
        ws_id = g.ws.id

        def check() -> None:
            if st.redis.is_revoked(project_id, ws_id):
                raise Unauthorized("this workspace's token was revoked")
        return check
    token, cookie = bearer(), request.cookies.get("bw_session")

    def check_in_sql() -> None:
        db.connect()
        try:
            if token.startswith(HUMAN_TOKEN_PREFIX):
                authenticate_token(token)  # the person was removed: the feed stops
            elif token:
                authenticate_key(st, token)
            else:
                record = sessions.session(st, cookie)
                if record is None:
                    raise Unauthorized("the dashboard session ended: log in again")
                sessions.project_of(record)
        finally:
            db.close()
    return check_in_sql


def _cookie_reader() -> tuple[int, dict | None]:
    record = sessions.session(store(), request.cookies.get("bw_session"))
    if record is None:
        raise Unauthorized("log in to the dashboard, or send Authorization: Bearer <token or project key>")
    # raises Unauthorized when the key was rotated, the person removed or the viewer revoked
    project = sessions.project_of(record)
    origin = request.headers.get("Origin")
    if origin and not same_site(origin):
        abort(403, "cross-site websocket refused")  # a cookie must not let another site read the feed
    return project.id, None if record["access"] == "human" else record.get("viewer") or {
        "ws": 0, "alias": "", "role": ""}


def _cursor(project_id: int) -> str:
    since = request.args.get("since", "")
    if since and since != "$":
        if not _SINCE.match(since):
            abort(400, "since must be a stream id like 1700000000000-0")
        return since
    return store().redis.last_event_id(project_id)  # a concrete id: nothing is lost between reads


def frame(sid: str, fields: dict[str, str], viewer: dict | None) -> str:
    """One event as its JSON frame, with what the reader may not see taken out (`sessions.redact`)."""
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError:
        data = {}
    kind = fields.get("kind", "")
    data = sessions.redact(kind, data if isinstance(data, dict) else {}, viewer)
    return json.dumps({"id": sid, "kind": kind, "data": data}, separators=(",", ":"))


@sock.route("/v1/ws", bp=bp)
def events(ws: Any) -> None:  # flask-sock's socket (simple_websocket.Server, untyped)
    project_id, cursor, viewer, st = g.feed_project, g.feed_cursor, g.feed_viewer, store()
    check, slot = g.feed_check, g.feed_slot
    checked = renewed = time.monotonic()
    db.close()  # a socket may stay open for hours: it must not hold a pooled connection
    try:
        with st.redis.event_feed(project_id) as feed:
            while ws.connected:
                for sid, fields in feed.read(cursor, BLOCK_MS):
                    ws.send(frame(sid, fields, viewer))
                    cursor = sid
                if time.monotonic() - checked >= RECHECK_SECONDS:
                    check()
                    checked = time.monotonic()
                if time.monotonic() - renewed >= RENEW_SECONDS:
                    slot.renew()
                    renewed = time.monotonic()
    except Unavailable:
        ws.close(1011, "event stream unavailable: reconnect with ?since=" + cursor)
    except Unauthorized as exc:
        ws.close(1008, str(exc)[:120])  # 1008 policy violation: the credential no longer stands
    finally:
        slot.leave()
