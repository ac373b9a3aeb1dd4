"""Request helpers shared by the blueprints: the JSON body, the store, the caller."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Response, after_this_request, current_app, g, request
from marshmallow import Schema, ValidationError
from werkzeug.routing import IntegerConverter

from actors.mailbox import rebuild_mailboxes
from store import Store, audit, db, waiters
from store.acting import person_workspace
from store.errors import BeadwireError, Forbidden, Unauthorized
from store.humans import HUMAN_TOKEN_PREFIX, Person, authenticate_token, key_person, require_role
from store.limits import take_ip, take_key
from store.messages import banner
from store.util import PROJECT_KEY_PREFIX, json_depth_over, now, unstorable_text
from store.workspaces import authenticate as auth
from store.workspaces import authenticate_key, forget_token, heartbeat
from web.autoreserve import auto_reserve_from_header
from web.gitstate import git_from_environ

log = logging.getLogger("beadwire.web")

#: Largest id a request may name: SQL integer columns are 32-bit on PostgreSQL (a larger one is a 404
#: or a 422, never the database's overflow error).
MAX_ID = 2**31 - 1
#: Longest query string read (proxies and gunicorn cap the whole request line near 4-8 KiB anyway).
MAX_QUERY = 8192
#: Request header: the newest mailbox entry (`entry` of a banner item) the client has shown. Its
#: presence makes the banner show every entry after it, until a later call confirms them.
SEEN_HEADER = "X-Wire-Seen"
SEEN_ENVIRON = "HTTP_X_WIRE_SEEN"
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
    # the app once, not `current_app.extensions`: a proxy finds an attribute only after a failed lookup
    return current_app._get_current_object().extensions["beadwire"]  # type: ignore[attr-defined]


def load(schema: Schema) -> dict[str, Any]:
    """The JSON body validated by `schema` (marshmallow raises ValidationError -> 422)."""
    limit = store().settings.max_depth
    req = request._get_current_object()  # type: ignore[attr-defined]
    try:
        data = req.get_json(silent=True) if req.content_length else {}
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


# The per-request hooks below read headers from the WSGI environ (`HTTP_X_WIRE_BRANCH` is what
# `request.headers.get("X-Wire-Branch")` looks up) and bind `g` and the request once: each lookup
# through Flask's context-local proxies costs about a microsecond, and these run on every call.


def bearer() -> str:
    return _bearer_of(request._get_current_object().environ)  # type: ignore[attr-defined]


def _bearer_of(environ: dict[str, Any]) -> str:
    header = environ.get("HTTP_AUTHORIZATION", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def authenticate() -> None:
    """before_request of the authenticated blueprints: resolve the token, refresh presence."""
    _authenticate(_bearer_of(request.environ))


def _authenticate(token: str) -> None:
    """`authenticate` for the bearer `token` (already read from the request)."""
    if not token:
        raise Unauthorized("missing bearer token: run `wire init` in your worktree")
    st, here, environ = store(), g._get_current_object(), request.environ
    try:  # `_failures_cost_the_address`, inline: a generator context manager costs ~1.5 us a request
        ws, project = auth(st, token)
    except Unauthorized:
        limit_ip()
        raise
    here.ws, here.project = ws, project
    act_as_caller()
    try:
        beat = heartbeat(st, ws, environ.get("HTTP_X_WIRE_BRANCH", ""), environ.get("HTTP_X_WIRE_HOST", ""),
                         _seen_in(environ), git=git_from_environ(environ))
    except Unauthorized:
        forget_token(st, token)  # revoked: this process's cache must not answer for it again
        raise
    shown = here.banner = banner(beat, now())
    if ws.paused_by:  # every answer reminds a paused agent (store/steer.py; auth caches lag up to seconds)
        here.banner = {**(shown or {"waiting": [], "new": [], "unread": beat.pending}),
                       "paused": {"by": ws.paused_by, "reason": ws.paused_reason}}
    _add_conflicts(st, beat.pending)
    if beat.rebuild:
        rebuild_mailboxes.send(project.id)


def seen_entry() -> str | None:
    """The caller's `X-Wire-Seen` entry id; None when it does not send one (each entry shows once, as
    read); a malformed one counts as "nothing shown yet" (an entry shown twice beats one never shown)."""
    return _seen_in(request.environ)


def _seen_in(environ: dict[str, Any]) -> str | None:
    raw = environ.get(SEEN_ENVIRON)
    if raw is None:
        return None
    raw = raw.strip()
    return raw if _ENTRY_ID.fullmatch(raw) else "0-0"


def _add_conflicts(st: Store, unread: int) -> None:
    """Auto-reserve the caller's modified files (header `X-Wire-Changed`); overlaps join the banner."""
    conflicts = auto_reserve_from_header(st)
    if conflicts:
        g.banner = {**(g.banner or {"waiting": [], "new": [], "unread": unread}), "conflicts": conflicts}


#: The least role a person needs on a human route; every other route of `admin` needs "admin", every
#: other route of `key_or_workspace` "viewer" to read (GET) and "lead" to change something.
HUMAN_ROLES: dict[str, str] = {
    "escalations_admin.respond": "lead",
    "dashboard_api.mint_link": "viewer",
    "humans.list_humans": "viewer",
    "humans.whoami": "viewer",
    # the agents' routes a person may call (`workspace_or_human`); the rest act as a workspace only
    "beads.list_beads": "viewer",
    "beads.show_bead": "viewer",
    "beads.history": "viewer",
    "beads.ready": "viewer",
    "beads.search": "viewer",
    "beads.claims": "viewer",
    "beads.release": "lead",  # freeing a stuck agent's claim: the holder is told who and why
    "team.workspaces": "viewer",
}
#: The agents' routes a person (a lead or above) calls as themselves: the view runs with g.ws = the
#: person's own workspace (store/acting.py), so what they do carries their name, as from the dashboard
#: (CLI parity: `wire --as maria create ...`). Claims stay agents' work: `beads.claim` is not here.
ACTS_AS_PERSON = frozenset({
    "beads.create_bead", "beads.update_bead", "beads.comment", "beads.link", "beads.close", "beads.reopen",
    "mail.send", "chat.post", "chat.wait", "chat.done", "chat.pending", "chat.history",
})
HUMAN_ROLES.update(dict.fromkeys(ACTS_AS_PERSON, "lead"))


def is_person_bearer(token: str) -> bool:
    """Whether a bearer is a person's: the project key or a personal token."""
    return token.startswith((PROJECT_KEY_PREFIX, HUMAN_TOKEN_PREFIX))


def person() -> None:
    """Resolve a person's bearer (the project key or a personal token): g.project, g.person; g.ws None."""
    token = bearer()
    if not token:
        raise Unauthorized("missing bearer: this call needs a person: the project key "
                           "(--key or WIRE_PROJECT_KEY) "
                           "or a personal token (--as NAME or WIRE_HUMAN_TOKEN)")
    with _failures_cost_the_address():
        if token.startswith(HUMAN_TOKEN_PREFIX):
            g.person, g.project = authenticate_token(token)
        else:
            g.project = authenticate_key(store(), token)
            g.person = key_person(g.project)
    g.ws = None
    act_as_caller()
    take_key(store(), g.project.id)


def acting_human() -> Person | None:
    """The `store.humans.Person` acting for this request (API bearer or dashboard session), or None for
    a workspace token or a workspace's read-only dashboard session. The one answer to "who did it"."""
    return g.get("person")


def person_acting() -> Person:
    """The person acting for this request, on a route that resolved one (`person()` ran).

    Raises:
        Unauthorized: no person acts for it (a workspace token's request).
    """
    found = acting_human()
    if found is None:
        raise Unauthorized("this call needs a person: the project key or a personal token")
    return found


def _need(default: str) -> None:
    require_role(acting_human(), HUMAN_ROLES.get(request.endpoint or "", default))


def admin() -> None:
    """before_request of human-only routes: a person (project key or personal token) whose role allows
    the route (HUMAN_ROLES, else admin); a workspace token gets 403."""
    person()
    _need("admin")


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
    take_ip(store(), request.remote_addr or "")


def key_or_workspace() -> None:
    """before_request of routes open to both: a person (g.ws is None; a change needs a lead) or a
    workspace token."""
    token = bearer()
    if is_person_bearer(token):
        person()
        _need("viewer" if request.method in ("GET", "HEAD") else "lead")
    else:
        _authenticate(token)


def workspace_or_human() -> None:
    """before_request of the agents' blueprints: a workspace token, or a person on the routes listed in
    HUMAN_ROLES (g.ws is None there); any other route refuses a person with 403, not a misleading 401."""
    token = bearer()
    if not is_person_bearer(token):
        _authenticate(token)
        return
    person()
    if (request.endpoint or "") not in HUMAN_ROLES:
        raise Forbidden("this call acts as a workspace: run it from an agent's worktree (`wire init`)")
    _need("lead")
    if request.endpoint in ACTS_AS_PERSON:
        g.ws = person_workspace(g.project, person_acting())


#: Response header on every answer: the CLI checks it before it sends a token to a URL it has not
#: seen answer as beadwire (cli/client.py, `Client.check_server`). Its value is the API version.
SERVER_HEADER = "X-Beadwire"
API_VERSION = "1"


def identify(response: Response) -> Response:
    """after_request: every answer (errors and pages too) says it comes from a beadwire server."""
    response.headers[SERVER_HEADER] = API_VERSION
    return response


def hold_waiter(owner: str) -> None:
    """Take a waiter slot for this request (429 beyond the caps: store/waiters.py), given back once the
    answer is sent, so the waiter's answer does not wait for Redis to hear that it left."""
    slot = waiters.enter(store(), g.project.id, owner)

    @after_this_request
    def _leave_when_sent(response: Response) -> Response:
        response.call_on_close(slot.leave)
        return response


def start_waiting() -> None:
    """What a request does before it blocks for the caller's workspace: it gives its database connection
    back (a waiter holds none) and takes a waiter slot (`hold_waiter`)."""
    db.close()
    hold_waiter(f"w{g.ws.id}")


#: `json.dumps(..., separators=(",", ":"))` with its encoder built once (the same text). A banner is
#: built afresh from parsed JSON, so it holds no cycle to check for (a dict of ids per container less).
_compact_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def add_banner(response: Response) -> Response:
    """after_request: the caller's banner rides on every authenticated answer (ASCII JSON header)."""
    shown = g.get("banner")
    if shown:
        response.headers["X-Wire-Banner"] = _compact_json(shown)
    return response


# -- who acts (store/audit.py) ---------------------------------------------------------------------

#: How a human credential without a personal account is named in notices and the audit log (personal
#: accounts name the person instead).
KEY_HOLDER = "human"


def actor() -> audit.Actor:
    """The acting party of this request, from its credential: the one function that names who does
    something (notices, "assigned by", "paused by", audit rows). A person (`acting_human`): their name
    and credential; agents: their alias and workspace token."""
    here = g._get_current_object()
    ws, dash, person = here.get("ws"), here.get("dash"), here.get("person")  # person: `acting_human()`
    if person is not None:  # a person (store/humans.py): the project key's is named "project key"
        who = audit.human(person.name, audit.PERSON_CREDENTIALS.get(person.credential, person.credential))
    elif dash is not None:
        who = audit.human(KEY_HOLDER, audit.SESSION) if dash.get("access") == "human" else audit.Actor(
            (dash.get("viewer") or {}).get("alias") or "viewer", "agent", audit.SESSION)
    elif ws is not None:
        who = audit.agent(ws.alias)
    elif here.get("project") is not None:
        who = audit.human(KEY_HOLDER, audit.KEY)
    else:
        who = audit.SYSTEM
    return _from_caller(who, request.environ)


def _from_caller(who: audit.Actor, environ: dict[str, Any]) -> audit.Actor:
    """`who`, at the caller's address (`request.remote_addr`) and host (header `X-Wire-Host`)."""
    return who.at(environ.get("REMOTE_ADDR") or "", environ.get("HTTP_X_WIRE_HOST", ""))


def act_as_caller() -> None:
    """Once the credential is known: name the caller as this request's actor."""
    audit.act_as(actor())


def reset_actor() -> None:
    """before_request of the app: no request inherits the previous one's actor on this thread."""
    environ = request._get_current_object().environ  # type: ignore[attr-defined]
    audit.act_as(_from_caller(audit.SYSTEM, environ))


#: Methods that change state.
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def audit_request(response: Response) -> Response:
    """after_request: the audit log's catch-all. Changes that commit an outbox row were logged with
    it (store/outbox.py `record`); a mutating request that succeeded without one (settings, keys,
    policies, sessions, ...) gets a row naming its method and route, so nothing goes unrecorded."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    if req.method not in MUTATING or response.status_code >= 400:
        return response
    project = g._get_current_object().get("project")
    if project is None or audit.written() or req.endpoint is None:
        return response
    entry = request_entry()
    try:
        with db.transaction() as uow:
            audit.record(uow, project.id, entry.action, detail=entry.detail)
    except Exception:  # the change is committed: a lost catch-all row is logged, not a 500
        log.exception("audit row for %s not written", entry.action)
    return response


def request_entry() -> audit.Entry:
    """The audit row naming this request by its method and route (the catch-all's, `audit_request`).
    A route whose one transaction records no audit row of its own passes it to the store, which writes
    it inside that transaction (one commit, not two): `POST /v1/mail`."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    rule = req.url_rule.rule if req.url_rule else req.path
    return audit.Entry(f"{req.method} {rule}"[:64], {"path": req.path[:500]})
