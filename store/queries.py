"""The hot paths' statements, named, each run through Peewee's database and answering named rows.

Peewee spends ~0.2 ms building the SQL of one query object, more than SQLite takes to run it, and
a claim ran a dozen. So the few statements every claim, mail, chat and token lookup runs are
written out here once, in the subset of SQL both SQLite and PostgreSQL accept, with `?` placeholders
(numbered `$n` in a prepared statement on PostgreSQL). This is the only path for these operations: the
store modules call the functions below, never a statement of their own.

Rows come back as model instances (as Peewee's cursor wrapper makes them: no defaults, no dirty
fields) or as NamedTuples. `Model.raw` would build the instances too, at ~45 µs more a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import peewee

from store import sqlite_writer
from store.db import database, is_sqlite, prepared_call
from store.models import Bead, Project, Workspace

M = TypeVar("M", bound=peewee.Model)


class Statement:
    """One hand-written statement (placeholders written `?`, no literal `?` or `%` in it).

    On PostgreSQL it runs prepared (store/db.py `prepared_call`), so the server plans it once per
    connection instead of on every run; with `BEADWIRE_PG_PREPARE=0` (a pooler in transaction mode)
    it runs as a plain statement.
    """

    __slots__ = ("name", "numbered", "plain", "text", "writes")

    _made = 0

    def __init__(self, text: str) -> None:
        self.text = text
        self.writes = sqlite_writer.is_write(text)  # worked out once, not on every run
        Statement._made += 1
        self.name = f"bw_{Statement._made}"  # prepared statements are per connection: unique per process
        parts = text.split("?")
        self.numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        self.plain = text.replace("?", "%s")  # psycopg2's placeholders

    def cursor(self, params: Sequence[Any] = ()) -> Any:
        db = database.obj
        if isinstance(db, peewee.SqliteDatabase):  # `is_sqlite()`, with the database object at hand
            return sqlite_writer.execute(db, self.text, params, self.writes)
        return db.execute_sql(self._sent(db, params), params)

    def defer(self, params: Sequence[Any]) -> None:
        """Run a statement whose answer nobody reads (an INSERT of a log row). On PostgreSQL it goes
        out with the transaction's next statement or its COMMIT (store/db.py `_Pool.defer`): one round
        trip fewer; on SQLite, in this process, at once."""
        db = database.obj
        if isinstance(db, peewee.SqliteDatabase):
            self.cursor(params)
        else:
            db.defer(self._sent(db, params), params)

    def _sent(self, db: Any, params: Sequence[Any]) -> str:
        """What PostgreSQL is sent: the prepared statement's EXECUTE, or the plain text."""
        return prepared_call(self.name, self.numbered, len(params)) if db.prepare else self.plain

    def one(self, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.cursor(params).fetchone()

    def all(self, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.cursor(params).fetchall()


class Insert(Statement):
    """An INSERT that answers the new row's id, as Peewee does (lastrowid, or RETURNING)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.numbered += ' RETURNING "id"'
        self.plain += ' RETURNING "id"'

    def insert(self, params: Sequence[Any]) -> int:
        cursor = self.cursor(params)
        return cursor.lastrowid if is_sqlite() else cursor.fetchone()[0]


def _run(text: str, params: Sequence[Any]) -> Any:
    """A statement built per call (an `IN (?, ...)` list of varying length)."""
    param = database.param
    return database.execute_sql(text if param == "?" else text.replace("?", param), params)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- model rows ---------------------------------------------------------------------------------

#: per model: field names, column names and the positions of boolean fields (SQLite gives 0/1)
_shapes: dict[type, tuple[list[str], list[str], list[int]]] = {}


def _shape(model: type[peewee.Model]) -> tuple[list[str], list[str], list[int]]:
    shape = _shapes.get(model)
    if shape is None:
        fields = model._meta.sorted_fields
        shape = _shapes[model] = ([f.name for f in fields], [f.column_name for f in fields],
                                  [i for i, f in enumerate(fields) if isinstance(f, peewee.BooleanField)])
    return shape


def _columns(model: type[peewee.Model], alias: str) -> str:
    """Every column of `model` as a select list (`"b"."id", "b"."project_id", ...`), for `_model`."""
    return ", ".join(f'"{alias}"."{column}"' for column in _shape(model)[1])


def _width(model: type[peewee.Model]) -> int:
    return len(_shape(model)[0])


def _model(model: type[M], row: Sequence[Any], start: int = 0) -> M:
    """The instance of `row[start:]` selected with `_columns(model, ...)`, as Peewee would make it."""
    names, _, bools = _shape(model)
    values = list(row[start:start + len(names)])
    for i in bools:
        if values[i] is not None:
            values[i] = bool(values[i])
    obj = model(__no_default__=True)
    obj.__data__ = dict(zip(names, values))
    return obj


# -- beads and claims ---------------------------------------------------------------------------

_BEAD_IN_REPO = Statement(f'SELECT {_columns(Bead, "b")} FROM "bead" AS "b" '
                          'WHERE "b"."repo_id" = ? AND "b"."ref" = ?')


def bead_in_repo(repo_id: int, ref: str) -> Bead | None:
    """The bead `ref` of a repo (the common lookup: a bare id in the caller's repo, on every bead route)."""
    row = _BEAD_IN_REPO.one((repo_id, ref))
    return _model(Bead, row) if row else None


# -- claims (store/claims.py) ------------------------------------------------------------------

class Holder(NamedTuple):
    """A claim on a bead and what a claim decides on about its holder: who, since when, gone stale?
    Named as a workspace's columns (`id`, `revoked`, ...): store/claims.py `is_stale` reads it as one."""

    id: int  # the holder's workspace
    project_id: int
    alias: str
    human: str
    revoked: bool
    last_seen_ts: float
    claim_id: int
    claimed_ts: float
    stale: bool
    reason: str


class ClaimRead(NamedTuple):
    """Everything a claim decides on, in one statement: the bead, its repo, whether it has
    dependencies or children (else the ready rule needs no graph), its holder, how many others
    subscribe to it, and whether the claimer is paused."""

    bead: Bead
    canonical: str  # the bead's repo
    own_deps: bool  # the bead has dependencies of its own
    children: bool  # some bead names it as parent
    holder: Holder | None
    subscribers: int  # subscriptions to the bead of others than the claimer
    paused: tuple[str, str] | None  # the claimer's (by, reason) when paused


_CLAIM_READ_TEXT = (
    f'SELECT {_columns(Bead, "b")}, "r"."canonical", '
    'EXISTS (SELECT 1 FROM "dependency" AS "d" WHERE "d"."bead_id" = "b"."id"), '
    'EXISTS (SELECT 1 FROM "dependency" AS "d" WHERE "d"."project_id" = "b"."project_id" '
    'AND "d"."type" = ? AND "d"."target_ref" = "b"."ref"), '
    '"h"."id", "h"."project_id", "h"."alias", "h"."human", "h"."revoked", "h"."last_seen_ts", '
    '"c"."id", "c"."claimed_ts", "c"."stale", "c"."reason", '
    '(SELECT COUNT(*) FROM "subscription" AS "s" WHERE "s"."bead_id" = "b"."id" '
    'AND "s"."workspace_id" <> ?), '
    '"me"."paused_by", "me"."paused_reason" '
    'FROM "bead" AS "b" JOIN "repo" AS "r" ON "r"."id" = "b"."repo_id" '
    'LEFT JOIN "claim" AS "c" ON "c"."bead_id" = "b"."id" '
    'LEFT JOIN "workspace" AS "h" ON "h"."id" = "c"."workspace_id" '
    'LEFT JOIN "workspace" AS "me" ON "me"."id" = ? ')
_CLAIM_BY_REF = Statement(_CLAIM_READ_TEXT + 'WHERE "b"."repo_id" = ? AND "b"."ref" = ?')
_CLAIM_BY_ID = Statement(_CLAIM_READ_TEXT + 'WHERE "b"."id" = ?')
#: Under the write lock (store/claims.py decides again there when the bead changed since its first
#: read). On PostgreSQL it locks the bead row: a sync changing the bead meanwhile (store/sync.py locks
#: its repo's rows) is waited for, and its status seen.
_CLAIM_BY_ID_LOCKED = Statement(_CLAIM_READ_TEXT + 'WHERE "b"."id" = ? FOR UPDATE OF "b"')


def claim_read_by_ref(claimer_id: int, repo_id: int, ref: str, parent_type: str) -> ClaimRead | None:
    """The claim read of the bead `ref` of a repo (the usual claim: a bare id in the claimer's repo)."""
    return _claim_read(_CLAIM_BY_REF.one((parent_type, claimer_id, claimer_id, repo_id, ref)))


def claim_read(claimer_id: int, bead_id: int, parent_type: str, locked: bool = False) -> ClaimRead | None:
    """The claim read of a bead by id; `locked`: inside the claim's transaction (see above)."""
    statement = _CLAIM_BY_ID_LOCKED if locked and not is_sqlite() else _CLAIM_BY_ID
    return _claim_read(statement.one((parent_type, claimer_id, claimer_id, bead_id)))


def _claim_read(row: Sequence[Any] | None) -> ClaimRead | None:
    if row is None:
        return None
    (canonical, own, children, holder_id, project_id, alias, human, revoked, seen, claim_id, since, stale,
     reason, subscribers, paused_by, paused_reason) = row[_width(Bead):]
    holder = None if claim_id is None else Holder(holder_id, project_id, alias, human, bool(revoked), seen,
                                                  claim_id, since, bool(stale), reason)
    return ClaimRead(_model(Bead, row), canonical, bool(own), bool(children), holder, subscribers,
                     (paused_by, paused_reason) if paused_by else None)


#: A claim's status change, made only if nothing the claim decided on changed since it was read: the
#: bead's columns (what the answer shows included), the claimer's pause, the bead's subscribers. A
#: claim read before taking the write lock finds out here, under it, whether its read still holds.
#: (The CAST lets PostgreSQL prepare it: a bare `? IS NULL` has no type to infer.)
_CLAIM_STATUS_TEXT = (
    'UPDATE "bead" SET "status" = ?, "updated_ts" = ?, "data" = ?, "assignee" = ? '
    'WHERE "id" = ? AND "status" = ? AND "updated_ts" = ? AND "data" = ? AND "assignee" = ? '
    'AND "assigned_by" = ? AND "assign_reason" = ? AND "title" = ? AND "description" = ? '
    'AND "priority" = ? AND "issue_type" = ? AND "labels" = ? '
    'AND ("defer_ts" = ? OR ("defer_ts" IS NULL AND CAST(? AS DOUBLE PRECISION) IS NULL)) '
    'AND NOT EXISTS (SELECT 1 FROM "workspace" AS "w" WHERE "w"."id" = ? AND "w"."paused_by" <> ?) '
    'AND (SELECT COUNT(*) FROM "subscription" AS "s" WHERE "s"."bead_id" = ? '
    'AND "s"."workspace_id" <> ?) = ?')
_CLAIM_STATUS = Statement(_CLAIM_STATUS_TEXT)
_INSERT_CLAIM = Statement('INSERT INTO "claim" ("project_id", "bead_id", "workspace_id", "claimed_ts", '
                          '"reason", "stale") VALUES (?, ?, ?, ?, ?, ?)')
#: Both in one round trip on PostgreSQL (a data-modifying WITH, which SQLite lacks): the claim row is
#: inserted only when the guarded update changed the bead.
_CLAIM_STATUS_AND_ROW = Statement(
    f'WITH "u" AS ({_CLAIM_STATUS_TEXT} RETURNING "id") INSERT INTO "claim" ("project_id", "bead_id", '
    '"workspace_id", "claimed_ts", "reason", "stale") SELECT ?, "u"."id", ?, ?, ?, ? FROM "u"')
_DELETE_CLAIM = Statement('DELETE FROM "claim" WHERE "id" = ?')
_CLEAR_BINDING = Statement('UPDATE "bead" SET "assigned_by" = ?, "assign_reason" = ? WHERE "id" = ?')


def take_claim(read: ClaimRead, claimer_id: int, alias: str, ts: float, data: str, reason: str) -> bool:
    """The claim's two writes, if `read` still holds: the bead becomes in_progress (with `updated_ts`,
    `data`, `alias` as assignee) and the claim row is inserted. False when the bead changed since
    `read` (nothing written).

    Raises:
        peewee.IntegrityError: the bead has a claim row already (the unique index on `claim.bead`).
    """
    b = read.bead
    changed = ("in_progress", ts, data, alias)
    before = (b.id, b.status, b.updated_ts, b.data, b.assignee, b.assigned_by, b.assign_reason, b.title,
              b.description, b.priority, b.issue_type, b.labels, b.defer_ts, b.defer_ts)
    others = (claimer_id, "", b.id, claimer_id, read.subscribers)
    row = (b.project_id, claimer_id, ts, reason, False)
    if not is_sqlite():
        return bool(_CLAIM_STATUS_AND_ROW.cursor((*changed, *before, *others, *row)).rowcount)
    if not _CLAIM_STATUS.cursor((*changed, *before, *others)).rowcount:
        return False
    _INSERT_CLAIM.cursor((b.project_id, b.id, claimer_id, ts, reason, False))
    return True


def delete_claim(claim_id: int) -> None:
    _DELETE_CLAIM.cursor((claim_id,))


def clear_binding(bead_id: int) -> None:
    """The bead's assignment is no longer binding (store/steer.py)."""
    _CLEAR_BINDING.cursor(("", "", bead_id))


# -- bead status --------------------------------------------------------------------------------

_SAVE_STATUS = Statement('UPDATE "bead" SET "status" = ?, "updated_ts" = ?, "data" = ?, "assignee" = ? '
                         'WHERE "id" = ?')


def save_status(bead: Bead) -> None:
    """Only the columns a status change touches (a full save rewrote every column of the row)."""
    _SAVE_STATUS.cursor((bead.status, bead.updated_ts, bead.data, bead.assignee, bead.id))


def any_has_type(bead_ids: Sequence[int], dep_type: str) -> bool:
    """Whether any of these beads has a dependency of this type."""
    text = f'SELECT 1 FROM "dependency" WHERE "type" = ? AND "bead_id" IN ({_marks(len(bead_ids))}) LIMIT 1'
    return _run(text, (dep_type, *bead_ids)).fetchone() is not None


_OPEN_LABELLED = Statement('SELECT "id", "labels" FROM "bead" WHERE "project_id" = ? AND "status" = ? '
                           'AND "labels" LIKE ?')


class Labels(NamedTuple):
    id: int
    labels: str  # the JSON array as stored


def labelled(project_id: int, status: str, pattern: str) -> list[Labels]:
    """The beads of a status whose labels match a LIKE pattern."""
    return [Labels(*row) for row in _OPEN_LABELLED.all((project_id, status, pattern))]


# -- mail and chat ------------------------------------------------------------------------------

_BY_ALIAS = Statement('SELECT "w"."id", "w"."alias" FROM "workspace" AS "w" '
                      'WHERE "w"."project_id" = ? AND "w"."revoked" = ? AND "w"."alias" = ?')
_INSERT_MESSAGE = Insert('INSERT INTO "message" ("project_id", "kind", "sender_id", "thread", "subject", '
                         '"body", "priority", "data", "created_ts") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
_INSERT_DELIVERY = Insert('INSERT INTO "delivery" ("message_id", "recipient_id", "project_id") '
                          'VALUES (?, ?, ?)')
#: What a reader has not read yet of one sender's messages of a kind (on every chat post).
_UNREAD_FROM = Statement('SELECT "d"."id" FROM "delivery" AS "d" '
                         'JOIN "message" AS "m" ON "m"."id" = "d"."message_id" '
                         'WHERE "d"."recipient_id" = ? AND "d"."acked_ts" IS NULL AND "m"."sender_id" = ? '
                         'AND "m"."kind" = ?')


class Addressee(NamedTuple):
    """A workspace as mail and chat address it: all a delivery needs (not a 16-column model row)."""

    id: int
    alias: str


def live_by_alias(project_id: int, alias: str) -> list[Addressee]:
    """The project's unrevoked workspaces called `alias`."""
    return [Addressee(*row) for row in _BY_ALIAS.all((project_id, False, alias))]


def insert_message(project_id: int, kind: str, sender_id: int | None, thread: str, subject: str, body: str,
                   priority: str, data: str, ts: float) -> int:
    return _INSERT_MESSAGE.insert((project_id, kind, sender_id, thread, subject, body, priority, data, ts))


def insert_delivery(message_id: int, recipient_id: int, project_id: int) -> int:
    return _INSERT_DELIVERY.insert((message_id, recipient_id, project_id))


def unread_from(recipient_id: int, sender_id: int, kind: str) -> list[int]:
    """The ids of the deliveries to `recipient_id` of `sender_id`'s messages of `kind` not acked yet."""
    return [pk for (pk,) in _UNREAD_FROM.all((recipient_id, sender_id, kind))]


def ack(delivery_ids: Sequence[int], ts: float) -> None:
    """Mark deliveries read at `ts` (those not read before)."""
    marks = _marks(len(delivery_ids))
    text = f'UPDATE "delivery" SET "acked_ts" = ? WHERE "acked_ts" IS NULL AND "id" IN ({marks})'
    _run(text, (ts, *delivery_ids))


# -- the outbox ---------------------------------------------------------------------------------

_INSERT_EVENT = Statement('INSERT INTO "event" ("project_id", "kind", "workspace_id", "bead_ref", "data", '
                          '"created_ts") VALUES (?, ?, ?, ?, ?, ?)')
_INSERT_OUTBOX = Insert('INSERT INTO "outbox" ("project_id", "kind", "recipient_id", "delivery_id", '
                        '"to_events", "payload", "created_ts", "attempts") VALUES (?, ?, ?, ?, ?, ?, ?, 0)')


def insert_event(project_id: int, kind: str, workspace_id: int | None, bead_ref: str, body: str,
                 ts: float) -> None:
    _INSERT_EVENT.defer((project_id, kind, workspace_id, bead_ref, body, ts))


def insert_outbox(project_id: int, kind: str, recipient_id: int | None, delivery_id: int | None,
                  to_events: bool, body: str, ts: float) -> int:
    return _INSERT_OUTBOX.insert((project_id, kind, recipient_id, delivery_id, to_events, body, ts))


# -- workspaces ---------------------------------------------------------------------------------

class TokenHolder(NamedTuple):
    workspace: Workspace  # with `workspace.project` set, as the join would
    project: Project


#: The token lookup of every request whose token is not in the cache.
_BY_TOKEN = Statement(f'SELECT {_columns(Workspace, "w")}, {_columns(Project, "p")} FROM "workspace" AS "w" '
                      'JOIN "project" AS "p" ON "p"."id" = "w"."project_id" '
                      'WHERE "w"."token_hash" = ? AND "w"."revoked" = ?')


def token_holder(token_hash: str) -> TokenHolder | None:
    """The unrevoked workspace with this token hash, and its project."""
    row = _BY_TOKEN.one((token_hash, False))
    if row is None:
        return None
    ws, project = _model(Workspace, row), _model(Project, row, _width(Workspace))
    ws.project = project  # `ws.project` needs no query
    ws._dirty.clear()
    return TokenHolder(ws, project)


@dataclass
class Member:
    """The columns of a workspace the team view needs: a light row, not a model (1,000s per call)."""

    id: int
    project_id: int
    alias: str
    role: str
    human: str
    hostname: str
    path: str
    last_seen_ts: float
    revoked: bool
    repo: str


class TeamClaim(NamedTuple):
    """Only what a Claim object shows: a bead's description and data can be large, and a team may
    hold thousands."""

    workspace_id: int
    bead_id: int
    claimed_ts: float
    reason: str
    ref: str
    repo: str
    title: str


_TEAM = Statement('SELECT "w"."id", "w"."project_id", "w"."alias", "w"."role", "w"."human", "w"."hostname", '
                  '"w"."path", "w"."last_seen_ts", "w"."revoked", "r"."canonical" FROM "workspace" AS "w" '
                  'JOIN "repo" AS "r" ON "r"."id" = "w"."repo_id" '
                  'WHERE "w"."project_id" = ? AND "w"."revoked" = ?')
_TEAM_CLAIMS = Statement('SELECT "c"."workspace_id", "c"."bead_id", "c"."claimed_ts", "c"."reason", '
                         '"b"."ref", "r"."canonical", "b"."title" FROM "claim" AS "c" '
                         'JOIN "bead" AS "b" ON "b"."id" = "c"."bead_id" '
                         'JOIN "repo" AS "r" ON "r"."id" = "b"."repo_id" WHERE "c"."project_id" = ? '
                         'ORDER BY "c"."claimed_ts"')


def team(project_id: int) -> list[Member]:
    """The project's unrevoked workspaces (raw rows: Peewee's per-value conversion costs more than the
    query itself at 1,000 members)."""
    return [Member(*row) for row in _TEAM.all((project_id, False))]


def team_claims(project_id: int) -> list[TeamClaim]:
    """Every claim of the project, oldest first."""
    return [TeamClaim._make(row) for row in _TEAM_CLAIMS.all((project_id,))]


# == the mail path and the per-request overhead (issue 19) =======================================
# Kept in one block of their own, apart from the claim statements above.

_INSERT_AUDIT = Statement('INSERT INTO "audit" ("project_id", "ts", "who", "who_kind", "credential", '
                          '"action", "bead_ref", "detail", "address", "host") '
                          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')


def insert_audit(project_id: int, ts: float, who: str, who_kind: str, credential: str, action: str,
                 bead_ref: str, detail: str, address: str, host: str) -> None:
    """One audit row (store/audit.py `record`: every change, so one per claim, mail, edit, ...)."""
    _INSERT_AUDIT.defer((project_id, ts, who, who_kind, credential, action, bead_ref, detail, address, host))
