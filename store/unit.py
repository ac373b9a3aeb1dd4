"""The unit of work: what one write transaction records besides its rows, and where it goes after.

`db.transaction()` yields a `UnitOfWork`. Everything that must commit or roll back with the fact is
carried on it explicitly: the outbox rows (`outbox.record(uow, ...)`), the acting party the audit
row names (`uow.actor`), and a request's `Idempotency-Key` row (`uow.first_write`, inserted first
thing in the request's first write transaction). When the transaction commits, its rows move to the
`Scope` that owns it; a rollback drops them, so a row that never committed is never published.

A `Scope` is one request (web/app.py opens it in `before_request`) or one actor message
(actors/middleware.py). Its owner publishes what committed in it when its work is done (web after
the request, actors after their work: `outbox.publish_pending`). The scope is the one request-scoped
value the store keeps in a ContextVar: the ~55 transactions open in store functions that never see
the web request, and threading a scope argument through all of them (and their callers) would make
every domain signature carry plumbing. A ContextVar is request-scoped under threads and gevent alike,
like Flask's own `request` and `g`; every value that outlives a request lives on the `Store` instead.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from store.audit import Actor

Row = dict[str, Any]


class FirstWrite(Protocol):
    """Joins the first outermost write transaction of a request (store/requests.py: the request id)."""

    def begin(self) -> None: ...

    def end(self, committed: bool) -> None: ...


@dataclass
class Scope:
    """One request's or one actor message's work: who acts, its key, what committed and awaits publishing."""

    #: The acting party (store/audit.py); None until the web layer names one: the system.
    actor: Actor | None = None
    #: Set while a request that carries an `Idempotency-Key` runs (store/requests.py `keyed`).
    first_write: FirstWrite | None = None
    #: Outbox rows of committed transactions, not yet published.
    committed: list[Row] = field(default_factory=list)
    #: Audit rows written in this scope (the web layer's catch-all checks it: web/common.py).
    audited: int = 0
    #: The innermost transaction open in this scope.
    open: UnitOfWork | None = None

    def take(self) -> list[Row]:
        """The committed rows, handed over once (publish them)."""
        rows, self.committed = self.committed, []
        return rows

    def begin(self, outermost: bool) -> UnitOfWork:
        """A unit of work for a transaction opening now; the outermost one carries the first write."""
        work = UnitOfWork(self, self.actor, parent=self.open,
                          first_write=self.first_write if outermost else None)
        self.open = work
        return work

    def end(self, work: UnitOfWork, committed: bool) -> None:
        """The transaction of `work` is over: its rows go to the enclosing one, or to `committed`."""
        self.open = work.parent
        if work.first_write is not None:
            work.first_write.end(committed)
        if not committed:
            return
        (work.parent.rows if work.parent is not None else self.committed).extend(work.rows)


@dataclass
class UnitOfWork:
    """One transaction's side effects: its outbox rows, who acts, and the request's key row."""

    scope: Scope
    #: Who acts (None: the system; store/audit.py `acting` reads it).
    actor: Actor | None
    rows: list[Row] = field(default_factory=list)
    #: The enclosing transaction (a savepoint's rows join it when the savepoint commits).
    parent: UnitOfWork | None = None
    first_write: FirstWrite | None = None

    def start(self) -> None:
        """First thing inside the transaction: the request's key row, so it commits with the fact."""
        if self.first_write is not None:
            self.first_write.begin()


_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("beadwire_scope")


def scope() -> Scope:
    """The scope of the current request or message (a fresh one for code that opened none: tests, scripts)."""
    try:
        return _scope.get()
    except LookupError:
        return open_scope()


def open_scope() -> Scope:
    """Start a request's or a message's work: nothing of the previous one is inherited."""
    fresh = Scope()
    _scope.set(fresh)
    return fresh
