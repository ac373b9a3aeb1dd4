"""Request ids: a write sent with an `Idempotency-Key` is applied at most once, and a repeat of it
gets the first answer back (docs/API.md, "Request ids").

The key's row is inserted first thing inside the request's first write transaction (its unit of
work carries it: store/unit.py `UnitOfWork.first_write`), so the fact and the key commit together
or not at all: a crash can never leave a fact applied with no trace of its key. The answer is
written to the row right after the request; a repeat that finds the row without its answer is
either still running (409 `request_in_progress`) or lost its answer in a crash (409
`already_applied`). A request that wrote nothing (refused, invalid) leaves no row, so sending it
again simply runs it again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import peewee

from store import db, unit
from store.errors import AlreadyApplied, BadIdempotencyKey, IdempotencyMismatch, RequestInProgress
from store.models import RequestLog
from store.util import PROJECT_KEY_PREFIX, WORKSPACE_TOKEN_PREFIX, now

#: Longest key accepted (a UUID is 36 characters).
MAX_KEY = 100
_KEY_CHARS = re.compile(r"[A-Za-z0-9._:-]+")
#: Seconds a row without an answer counts as "in progress"; older, its answer was lost.
IN_PROGRESS_SECONDS = 60.0
IN_PROGRESS = "a request with this Idempotency-Key is being applied; try again"
#: Days a key is remembered (the retention sweep forgets older ones).
KEEP_DAYS = 7


def check_key(key: str) -> str:
    """The key, stripped.  Raises: BadIdempotencyKey: empty, too long, or odd characters."""
    key = key.strip()
    if not key:
        raise BadIdempotencyKey("the Idempotency-Key header is empty")
    if len(key) > MAX_KEY:
        raise BadIdempotencyKey(f"the Idempotency-Key header is longer than {MAX_KEY} characters")
    if not _KEY_CHARS.fullmatch(key):
        raise BadIdempotencyKey("the Idempotency-Key header may hold only letters, digits and . _ : -")
    return key


def fingerprint(method: str, path: str, query: bytes = b"", body: bytes = b"") -> str:
    """What a key is bound to: the method, path, query string and body (lengths keep them apart)."""
    digest = hashlib.sha256(f"{method} {path}\n{len(query)}:".encode())
    digest.update(query)
    digest.update(f"\n{len(body)}:".encode())
    digest.update(body)
    return digest.hexdigest()


def legacy_fingerprint(method: str, path: str) -> str:
    """The fingerprint of rows written before bodies counted (schema 5): they still replay."""
    return hashlib.sha256(f"{method} {path}".encode()).hexdigest()


@dataclass
class Answer:
    """A stored answer to replay."""

    status: int
    body: str


@dataclass
class Pending:
    """One keyed request while it runs: joins its first write transaction (`unit.FirstWrite`)."""

    project_id: int
    workspace_id: int
    key: str
    fingerprint: str
    #: `legacy_fingerprint` of the same request: a row keyed before the body counted still matches it
    legacy: str = ""
    row_id: int | None = None
    #: True once the transaction holding the key's row committed.
    committed: bool = False

    def begin(self) -> None:
        """Insert the key's row; a duplicate means the same request got there first.

        Raises:
            RequestInProgress: a request with this key committed meanwhile (the caller replays it).
        """
        if self.committed:
            return  # a later transaction of the same request: the key is recorded already
        try:  # no savepoint: a duplicate rolls the whole transaction back anyway
            self.row_id = RequestLog.insert(
                project=self.project_id, workspace_id=self.workspace_id, key=self.key,
                fingerprint=self.fingerprint, created_ts=now()).execute()
        except peewee.IntegrityError:
            raise RequestInProgress(IN_PROGRESS) from None

    def end(self, committed: bool) -> None:
        if self.row_id is not None and not self.committed:
            self.committed = committed
            if not committed:
                self.row_id = None  # rolled back with the fact: a later transaction may take the key


def lookup(pending: Pending) -> Answer | None:
    """The stored answer for this key, or None when it was never applied.

    Raises:
        IdempotencyMismatch: the key belongs to another method, path, query or body.
        RequestInProgress: applied just now, its answer not recorded yet.
        AlreadyApplied: applied, but the answer was lost (the server stopped in between).
    """
    columns = (RequestLog.fingerprint, RequestLog.status, RequestLog.body, RequestLog.withheld,
               RequestLog.created_ts)
    row = (RequestLog.select(*columns)
           .where(RequestLog.project == pending.project_id, RequestLog.workspace_id == pending.workspace_id,
                  RequestLog.key == pending.key).first())
    if row is None:
        return None
    if row.fingerprint not in (pending.fingerprint, pending.legacy):
        raise IdempotencyMismatch("this Idempotency-Key was used for a different request "
                                  "(method, path or body): "
                                  "a retry must repeat the request exactly; a new request needs a new key")
    if row.withheld:
        raise AlreadyApplied("this request was applied already; its answer held a secret and is not kept")
    if row.status:
        return Answer(row.status, row.body)
    if now() - row.created_ts < IN_PROGRESS_SECONDS:
        raise RequestInProgress(IN_PROGRESS)
    raise AlreadyApplied("this request was applied already, but its answer was not recorded")


@contextmanager
def keyed(pending: Pending) -> Iterator[Pending]:
    """Run a request with its key joining the first write transaction it opens."""
    scope = unit.scope()
    scope.first_write = pending
    try:
        yield pending
    finally:
        scope.first_write = None


def record(pending: Pending, status: int, body: str) -> None:
    """Store the answer of a request whose key committed (one update by primary key); an answer
    holding a key or token is not stored (secrets live only as hashes)."""
    if pending.row_id is None or not pending.committed:
        return
    withheld = PROJECT_KEY_PREFIX in body or WORKSPACE_TOKEN_PREFIX in body
    with db.transaction():
        RequestLog.update(status=status, body="" if withheld else body, withheld=withheld).where(
            RequestLog.id == pending.row_id).execute()


def purge(batch: int) -> int:
    """Forget keys older than `KEEP_DAYS`; returns how many went."""
    cutoff = now() - KEEP_DAYS * 86400
    total = 0
    while True:
        ids = RequestLog.select(RequestLog.id).where(RequestLog.created_ts < cutoff).limit(batch)
        with db.transaction():
            deleted = RequestLog.delete().where(RequestLog.id.in_(ids)).execute()
        total += deleted
        if deleted < batch:
            return total
