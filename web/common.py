"""Request helpers shared by the blueprints: the JSON body, the store, the caller."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, g, request
from marshmallow import Schema, ValidationError
from werkzeug.routing import IntegerConverter

from store import Store
from store.errors import BeadwireError, Unauthorized
from store.util import json_depth_over, unstorable_text

#: Largest id a request may name: SQL integer columns are 32-bit on PostgreSQL (a larger one is a 404
#: or a 422, never the database's overflow error).
MAX_ID = 2**31 - 1
#: Longest query string read (proxies and gunicorn cap the whole request line near 4-8 KiB anyway).
MAX_QUERY = 8192
#: Request header: the newest mailbox entry (`entry` of a banner item) the client has shown. Its
#: presence makes the banner show every entry after it, until a later call confirms them.
SEEN_HEADER = "X-Wire-Seen"
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


class IdConverter(IntegerConverter):
    """The `<int:...>` of every route, bounded by MAX_ID."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class BadRequest(BeadwireError):
    """Raised when the body is not a JSON object."""

    status_code = 400
    code = "bad_request"


def store() -> Store:
    return current_app.extensions["beadwire"]


def load(schema: Schema) -> dict[str, Any]:
    """The JSON body validated by `schema` (marshmallow raises ValidationError -> 422)."""
    limit = store().settings.max_depth
    try:
        data = request.get_json(silent=True) if request.content_length else {}
    except RecursionError:  # the parser's own limit (~1000 levels) is hit before ours is checked
        raise BadRequest(f"the body nests arrays and objects deeper than {limit} levels") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object (Content-Type: application/json)")
    if json_depth_over(data, limit):
        raise BadRequest(f"the body nests arrays and objects deeper than {limit} levels")
    _refuse_unstorable(data)
    return schema.load(data)


def load_args(schema: Schema) -> dict[str, Any]:
    """The query string validated by `schema` (ValidationError -> 422); one longer than MAX_QUERY is a 400."""
    if len(request.query_string) > MAX_QUERY:
        raise BadRequest(f"the query string is longer than {MAX_QUERY} bytes: send a body instead")
    args = request.args.to_dict()
    _refuse_unstorable(args)
    return schema.load(args)


def _refuse_unstorable(data: dict[str, Any]) -> None:
    """422 naming the field, instead of the database's error (a 500) or a backend-dependent answer."""
    path = unstorable_text(data)
    if path:
        field = path.split(".", 1)[0]
        raise ValidationError({field: [f"{path} contains a NUL character or an unpaired surrogate"]})


def bearer() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def authenticate() -> None:
    """before_request of the authenticated blueprints: resolve the token, refresh presence."""
    from store.messages import banner
    from store.util import now
    from store.workspaces import authenticate as auth
    from store.workspaces import heartbeat

    token = bearer()
    if not token:
        raise Unauthorized("missing bearer token: run `wire init` in your worktree")
    with _failures_cost_the_address():
        g.ws, g.project = auth(token)
    act_as_caller()
    try:
        beat = heartbeat(store(), g.ws, request.headers.get("X-Wire-Branch", ""),
                         request.headers.get("X-Wire-Host", ""), seen_entry())
    except Unauthorized:
        from store.workspaces import forget_token

        forget_token(token)  # revoked: this process's cache must not answer for it again
        raise
    g.banner = banner(beat, now())
    if g.ws.paused_by:  # every answer reminds a paused agent (store/steer.py; auth caches lag up to seconds)
        g.banner = {**(g.banner or {"waiting": [], "new": [], "unread": beat.pending}),
                    "paused": {"by": g.ws.paused_by, "reason": g.ws.paused_reason}}
    _add_conflicts(beat.pending)
    if beat.rebuild:
        from actors.mailbox import rebuild_mailboxes

        rebuild_mailboxes.send(g.project.id)


def seen_entry() -> str | None:
    """The caller's `X-Wire-Seen` entry id; None when it does not send one (each entry shows once, as
    read); a malformed one counts as "nothing shown yet" (an entry shown twice beats one never shown)."""
    raw = request.headers.get(SEEN_HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    return raw if _ENTRY_ID.fullmatch(raw) else "0-0"


def _add_conflicts(unread: int) -> None:
    """Auto-reserve the caller's modified files (header `X-Wire-Changed`); overlaps join the banner."""
    from web.locks import auto_reserve_from_header

    conflicts = auto_reserve_from_header()
    if conflicts:
        g.banner = {**(g.banner or {"waiting": [], "new": [], "unread": unread}), "conflicts": conflicts}


def admin() -> None:
    """before_request of human-only routes: the bearer must be the project key (a token gets 403)."""
    from store.workspaces import authenticate_key

    token = bearer()
    if not token:
        raise Unauthorized("missing bearer: this call needs the project key (--key or WIRE_PROJECT_KEY)")
    with _failures_cost_the_address():
        g.project, g.ws = authenticate_key(token), None
    act_as_caller()
    from store.limits import take_key

    take_key(store(), g.project.id)


@contextmanager
def _failures_cost_the_address() -> Iterator[None]:
    """An unknown bearer is charged to the caller's address: guessing tokens meets the per-address
    limit (429) instead of costing a database lookup per try. Known bearers never pay it."""
    try:
        yield
    except Unauthorized:
        limit_ip()
        raise


def limit_ip() -> None:
    """Charge a call without a token (init, the OpenAPI document) to its client address's bucket."""
    from store.limits import take_ip

    take_ip(store(), request.remote_addr or "")


def key_or_workspace() -> None:
    """before_request of routes open to both: the project key (g.ws is None) or a workspace token."""
    from store.util import PROJECT_KEY_PREFIX

    if bearer().startswith(PROJECT_KEY_PREFIX):
        admin()
    else:
        authenticate()


#: Response header on every answer: the CLI checks it before it sends a token to a URL it has not
#: seen answer as beadwire (cli/client.py, `Client.check_server`). Its value is the API version.
SERVER_HEADER = "X-Beadwire"
API_VERSION = "1"


def identify(response):
    """after_request: every answer (errors and pages too) says it comes from a beadwire server."""
    response.headers[SERVER_HEADER] = API_VERSION
    return response


def hold_waiter(owner: str) -> None:
    """Take a waiter slot for this request (429 beyond the caps: store/waiters.py), given back once the
    answer is sent, so the waiter's answer does not wait for Redis to hear that it left."""
    from flask import after_this_request

    from store import waiters

    slot = waiters.enter(store(), g.project.id, owner)

    @after_this_request
    def _leave_when_sent(response):
        response.call_on_close(slot.leave)
        return response


def start_waiting() -> None:
    """What a request does before it blocks for the caller's workspace: it gives its database connection
    back (a waiter holds none) and takes a waiter slot (`hold_waiter`)."""
    from store.db import close

    close()
    hold_waiter(f"w{g.ws.id}")


def add_banner(response):
    """after_request: the caller's banner rides on every authenticated answer (ASCII JSON header)."""
    if g.get("banner"):
        response.headers["X-Wire-Banner"] = json.dumps(g.banner, separators=(",", ":"))
    return response


# -- who acts (store/audit.py) ---------------------------------------------------------------------

#: How a human credential without a personal account is named in notices and the audit log (personal
#: accounts name the person instead).
KEY_HOLDER = "human"


def actor():
    """The acting party of this request, from its credential: the one function that names who does
    something (notices, "assigned by", "paused by", audit rows). Agents: their alias and workspace
    token; the project key and a dashboard session with human access: a human."""
    from store import audit

    ws, dash = g.get("ws"), g.get("dash")
    if dash is not None:
        who = audit.human(KEY_HOLDER, audit.SESSION) if dash.get("access") == "human" else audit.Actor(
            (dash.get("viewer") or {}).get("alias") or "viewer", "agent", audit.SESSION)
    elif ws is not None:
        who = audit.agent(ws.alias)
    elif g.get("project") is not None:
        who = audit.human(KEY_HOLDER, audit.KEY)
    else:
        who = audit.SYSTEM
    return who.at(request.remote_addr or "", request.headers.get("X-Wire-Host", ""))


def act_as_caller() -> None:
    """Once the credential is known: name the caller as this request's actor."""
    from store import audit

    audit.act_as(actor())


def reset_actor() -> None:
    """before_request of the app: no request inherits the previous one's actor on this thread."""
    from store import audit

    audit.act_as(audit.SYSTEM.at(request.remote_addr or "", request.headers.get("X-Wire-Host", "")))


#: Methods that change state.
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def audit_request(response):
    """after_request: the audit log's catch-all. Changes that commit an outbox row were logged with
    it (store/outbox.py `record`); a mutating request that succeeded without one (settings, keys,
    policies, sessions, ...) gets a row naming its method and route, so nothing goes unrecorded."""
    from store import audit, db

    project = g.get("project")
    if (request.method not in MUTATING or response.status_code >= 400 or project is None
            or audit.written() or request.endpoint is None):
        return response
    rule = request.url_rule.rule if request.url_rule else request.path
    try:
        with db.transaction():
            audit.record(project.id, f"{request.method} {rule}"[:64], detail={"path": request.path[:500]})
    except Exception:  # noqa: BLE001 - the change is committed; a lost catch-all row is logged, not a 500
        import logging

        logging.getLogger("beadwire.web").exception("audit row for %s %s not written", request.method, rule)
    return response
