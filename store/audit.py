"""The audit log: who changed what, when, from where. Append-only.

Where rows come from (why this is complete without touching every view): every durable state change
commits together with an outbox row (the design's rule, store/outbox.py), so `outbox.record` appends
the audit row in the same transaction, naming the acting party of the current request (`current()`).
The few writes that record no outbox row (settings, keys, policies, ...) are caught by the web layer:
a mutating request that succeeded without an audit row gets one naming its method and path
(web/common.py `audit_request`). Sweeps and workers act as `SYSTEM`.

The acting party is one small value, `Actor`, built once per request by the web layer (web/common.py
`actor()`): an agent's alias with its workspace token, or a human credential (project key, dashboard
session; personal accounts name the person). Everything that names who did something (notices,
"assigned by", "paused by", the audit row) reads it from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from store import db, queries, unit
from store.models import Audit
from store.unit import UnitOfWork
from store.util import iso, now

#: Largest page `query` returns.
MAX_LIMIT = 10_000
#: Outbox kinds that are deliveries or announcements, not changes someone made.
_NOT_CHANGES = frozenset({"bead.ready"})
#: `json.dumps(detail, default=str)` builds an encoder on every call (any argument but the object does);
#: this one is built once, with the same settings, so the same text
_DETAIL = json.JSONEncoder(default=str)

TOKEN, KEY, SESSION = "workspace token", "project key", "dashboard session"
PERSONAL = "personal token"
#: store/humans.py `Person.credential` -> how an audit row names it
PERSON_CREDENTIALS = {"project_key": KEY, "personal_token": PERSONAL, "session": SESSION}


@dataclass(frozen=True)
class Actor:
    """Who acts: `name` (an alias or a person), `kind` (agent | human | system), `credential` (how it
    proved it), and where the request came from."""

    name: str
    kind: str
    credential: str = ""
    address: str = ""
    host: str = ""

    @property
    def is_human(self) -> bool:
        return self.kind == "human"

    def at(self, address: str, host: str = "") -> Actor:
        # the constructor, not dataclasses.replace (~4 us, twice a request)
        return Actor(self.name, self.kind, self.credential, address[:64], host[:255])


SYSTEM = Actor("system", "system")


class Entry(NamedTuple):
    """An audit row's action and detail, decided by a caller that is not the transaction writing it
    (the web layer names a request by its route: web/common.py `request_entry`)."""

    action: str
    detail: dict[str, Any]


def agent(alias: str) -> Actor:
    return Actor(alias, "agent", TOKEN)


def human(name: str, credential: str) -> Actor:
    return Actor(name, "human", credential)


# Who acts is request-scoped: the web layer learns it once per request, from the credential, and the
# rows of every transaction of that request name it. It lives on the request's scope (store/unit.py);
# each unit of work carries it from there (`uow.actor`), so the store functions never look it up.


def act_as(actor: Actor) -> None:
    """Name the acting party of this request (web layer, once per request)."""
    scope = unit.scope()
    scope.actor, scope.audited = actor, 0


def current() -> Actor:
    """Who acts in this request (the system outside one)."""
    return unit.scope().actor or SYSTEM


def acting(uow: UnitOfWork) -> Actor:
    """Who acts in the transaction `uow`."""
    return uow.actor or SYSTEM


def written() -> int:
    """Audit rows written in this request so far."""
    return unit.scope().audited


def record(uow: UnitOfWork, project_id: int, action: str, bead_ref: str = "",
           detail: dict[str, Any] | None = None) -> None:
    """Append one row to the transaction `uow` of the change itself, naming who acts in it."""
    if action in _NOT_CHANGES:
        return
    who = acting(uow)
    queries.insert_audit(project_id, now(), who.name[:200], who.kind, who.credential, action[:64],
                         bead_ref[:520], _DETAIL.encode(detail or {}), who.address, who.host)
    uow.scope.audited += 1


def query(project_id: int, since: float | None = None, who: str | None = None, bead: str | None = None,
          action: str | None = None, limit: int = 200) -> list[AuditRowView]:
    """Rows newest first, filtered; `action` matches a prefix (`claim` finds claim.created, claim.jumped)."""
    q = Audit.select().where(Audit.project == project_id)
    if since is not None:
        q = q.where(Audit.ts >= since)
    if who:
        q = q.where(Audit.who == who)
    if bead:
        q = q.where((Audit.bead_ref == bead) | Audit.bead_ref.endswith(":" + bead))
    if action:
        q = q.where(Audit.action.startswith(action))
    rows = q.order_by(Audit.ts.desc(), Audit.id.desc()).limit(min(limit, MAX_LIMIT))
    return [row_view(r) for r in rows]


@dataclass
class AuditRowView:
    """An audit row as the API shows it (web/schemas/audit.py)."""

    id: int
    at: str | None  # never None: util.iso of a time
    who: str
    who_kind: str  # agent | human | system
    credential: str
    action: str
    bead: str
    detail: dict[str, Any]
    address: str
    host: str


def row_view(r: Audit) -> AuditRowView:
    return AuditRowView(r.id, iso(r.ts), r.who, r.who_kind, r.credential, r.action, r.bead_ref,
                        json.loads(r.detail or "{}"), r.address, r.host)


def purge(cutoff: float, batch: int) -> int:
    """Rows older than `cutoff`, in batches (the retention sweep: the only way a row ever goes)."""
    total = 0
    while True:
        ids = Audit.select(Audit.id).where(Audit.ts < cutoff).limit(batch)
        with db.transaction():
            deleted = Audit.delete().where(Audit.id.in_(ids)).execute()
        total += deleted
        if deleted < batch:
            return total
