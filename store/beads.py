"""Beads: the records, their normalisation, lookup by reference, queries and writes (their answers are
the domain objects of store/beadviews.py).

A bead row keeps the fields we query as columns and every other field of the beads record,
unknown ones included, in `data`, so a synced record comes back with nothing dropped.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import peewee

from store import audit, db, lookup, outbox, queries, readiness, steer
from store.beadviews import (
    BeadView,
    Brief,
    CommentView,
    Deps,
    DepView,
    Explained,
    bead_full,
    bead_views,
    comment_view,
)
from store.errors import Conflict, CycleError, InvalidInput
from store.graph import PARENT_TYPE, load_graph
from store.lookup import get_bead
from store.messages import notify_subscribers
from store.models import Bead, Comment, Dependency, Repo, Workspace
from store.readiness import announce_if_ready, with_role
from store.unit import UnitOfWork
from store.util import iso, now, parse_ts, unstorable_text

# Kept in reach of `store.beads` (web/beads.py asks it for both): `ready` lives with role routing in
# store/readiness.py, the lookups in store/lookup.py, so that readiness and steer, which beads' writes
# call into, need not import beads back.
ready = readiness.ready
repo_by_written = lookup.repo_by_written

STATUSES = ("open", "in_progress", "blocked", "deferred", "closed", "pinned", "hooked", "tombstone")
PRIORITY_WORDS = {"critical": 0, "high": 1, "medium": 2, "normal": 2, "low": 3, "backlog": 4}
#: Fields that live in columns or tables; everything else of a record goes to `data`.
COLUMN_FIELDS = ("id", "title", "description", "status", "priority", "issue_type", "assignee", "labels")
#: `blocked_by` (a variant shape) becomes dependencies but is also kept as written.
TABLE_FIELDS = ("dependencies", "comments")
#: Largest single text field we accept (descriptions of real beads run to a few KiB).
MAX_TEXT = 256 * 1024
MAX_TITLE = 1000
MAX_ID = 200
#: Tries at a fresh id when concurrent creates keep taking the one we picked.
DEFAULT_REF_ATTEMPTS = 50


def normalise_priority(value: Any) -> int:
    """0-4, `P0`-`P4`, or critical/high/medium/low/backlog, as an int.

    Raises:
        InvalidInput: anything else.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"priority must be 0-4, got {value!r}")
    if isinstance(value, int) and 0 <= value <= 4:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PRIORITY_WORDS:
            return PRIORITY_WORDS[text]
        text = text.removeprefix("p")
        if text.isdigit() and 0 <= int(text) <= 4:
            return int(text)
    raise InvalidInput(f"priority must be 0-4, P0-P4 or critical/high/medium/low/backlog, got {value!r}")


def priority_range(text: str) -> tuple[int, int]:
    """A priority filter: one priority (`P1`, `1`, `high`) or a range of two (`0-1`, `P0-P2`), as
    (most urgent, least urgent).

    Raises:
        InvalidInput: anything else, or a range that runs backwards.
    """
    ends = [end.strip() for end in text.split("-")]
    try:
        low, high = normalise_priority(ends[0]), normalise_priority(ends[-1])
    except InvalidInput:
        low = high = -1  # not a priority: refused below
    if low < 0 or high < 0 or len(ends) > 2:
        raise InvalidInput("priority filter must be a priority "
                           "(0-4, P0-P4 or critical/high/medium/low/backlog) "
                           f"or a range of two (0-1, P0-P2), got {text!r}")
    if low > high:
        raise InvalidInput(f"priority range {text!r} runs backwards: write the most urgent first "
                           f"({ends[-1]}-{ends[0]})")
    return low, high


def normalise_status(value: Any) -> str:
    if not isinstance(value, str) or value not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {value!r}")
    return value


# -- records (the beads format) -------------------------------------------------------------

def _text(record: dict[str, Any], name: str, limit: int = MAX_TEXT, required: bool = False) -> str:
    value = record.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters")
    return value


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) and len(x) <= 200 for x in value):
        raise InvalidInput("labels must be a list of strings")
    return value


def _deps(record: dict[str, Any], bead_id: str) -> list[dict[str, Any]]:
    """Dependencies from `dependencies` objects and the `blocked_by` list variant."""
    deps = record.get("dependencies") or []
    if not isinstance(deps, list):
        raise InvalidInput("dependencies must be a list")
    out = []
    for dep in deps:
        target = dep.get("depends_on_id") if isinstance(dep, dict) else None
        if not isinstance(target, str) or not target:
            raise InvalidInput("each dependency must be an object with a depends_on_id string")
        dep_type = dep.get("type", "blocks")
        if not isinstance(dep_type, str) or len(dep_type) > 64:
            raise InvalidInput("dependency type must be a string")
        out.append({**dep, "type": dep_type or "blocks"})
    blocked_by = record.get("blocked_by") or []
    if not isinstance(blocked_by, list) or not all(isinstance(x, str) and x for x in blocked_by):
        raise InvalidInput("blocked_by must be a list of bead ids")
    out.extend({"issue_id": bead_id, "depends_on_id": target, "type": "blocks"} for target in blocked_by)
    return out


def _comments(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("comments must be a list")
    for comment in value:
        if not isinstance(comment, dict) or not isinstance(comment.get("text", ""), str):
            raise InvalidInput("each comment must be an object with a text string")
    return value


def normalise_record(record: Any) -> dict[str, Any]:
    """Validate one beads record and split it into columns, deps, comments and extra data.

    Raises:
        InvalidInput: a field has the wrong type or size; the message names it.
    """
    if not isinstance(record, dict):
        raise InvalidInput("a bead record must be a JSON object")
    if bad := unstorable_text(record):
        raise InvalidInput(f"{bad} contains a NUL character or an unpaired surrogate")
    bead_id = _text(record, "id", MAX_ID, required=True).strip()
    if not bead_id or any(c.isspace() for c in bead_id) or "/" in bead_id:
        raise InvalidInput(f"bead id {record.get('id')!r} is empty or contains spaces or '/'")
    extra = {k: v for k, v in record.items() if k not in COLUMN_FIELDS + TABLE_FIELDS}
    created, updated = parse_ts(record.get("created_at")), parse_ts(record.get("updated_at"))
    return {
        "ref": bead_id,
        "title": _text(record, "title", MAX_TITLE),
        "description": _text(record, "description"),
        "status": normalise_status(record.get("status") or "open"),
        "priority": normalise_priority(record["priority"]) if record.get("priority") is not None else 2,
        "issue_type": _text(record, "issue_type", 64) or "task",
        "assignee": _text(record, "assignee", 200),
        "labels": _labels(record.get("labels")),
        "created_ts": created if created is not None else (updated or 0.0),
        "updated_ts": updated if updated is not None else (created or 0.0),
        "defer_ts": parse_ts(record.get("defer_until")),
        "extra": extra,
        "dependencies": _deps(record, bead_id),
        "comments": _comments(record.get("comments")),
    }


# -- queries --------------------------------------------------------------------------------

def list_beads(project_id: int, status: str | None = None, issue_type: str | None = None,
               label: str | None = None, assignee: str | None = None, repo_id: int | None = None,
               include_closed: bool = False, limit: int = 200,
               priority: tuple[int, int] | None = None) -> list[BeadView]:
    """Beads by filters, most urgent first; `priority`: (low, high) inclusive, as `priority_range` gives."""
    query = Bead.select().where(Bead.project == project_id)
    if priority:
        query = query.where(Bead.priority.between(*priority))
    if status:
        query = query.where(Bead.status == status)
    elif not include_closed:
        query = query.where(Bead.status.not_in(("closed", "tombstone")))
    if issue_type:
        query = query.where(Bead.issue_type == issue_type)
    if assignee:
        query = query.where(Bead.assignee == assignee)
    if repo_id:
        query = query.where(Bead.repo == repo_id)
    if label:
        # labels is a JSON array; LIKE narrows, the exact check below decides
        query = query.where(Bead.labels.contains(json.dumps(label)))
    query = query.order_by(Bead.priority, Bead.created_ts.desc(), Bead.ref).limit(limit)
    beads = [b for b in query if not label or label in json.loads(b.labels)]
    return bead_views(beads)


def search_beads(project_id: int, text: str, limit: int = 50) -> list[BeadView]:
    needle = text.strip()
    if not needle:
        raise InvalidInput("search text is empty")
    query = (Bead.select().where(Bead.project == project_id,
                                 Bead.title.contains(needle) | Bead.description.contains(needle)
                                 | Bead.ref.contains(needle))
             .order_by(Bead.status == "closed", Bead.priority, Bead.created_ts.desc()).limit(limit))
    return bead_views(list(query))


def explain(project_id: int, home_repo_id: int, ref: str) -> Explained:
    bead = get_bead(project_id, home_repo_id, ref)
    reasons = load_graph(project_id).not_ready_reasons(bead.id, now())
    return Explained(bead.ref, bead.repo.canonical, not reasons, reasons)


def deps_of(project_id: int, home_repo_id: int, ref: str) -> Deps:
    bead = get_bead(project_id, home_repo_id, ref)
    g = load_graph(project_id)

    def brief(pk: int | None, written: str) -> Brief:
        if pk is None:
            return Brief(written, "unknown", None)
        node = g.nodes[pk]
        return Brief(node.ref, node.status, node.title, g.repos[node.repo_id][0])

    active = g.active_blockers(bead.id)
    resolved = [b for b in g.blockers.get(bead.id, ()) if b not in active]
    parent = g.parent.get(bead.id)
    return Deps(bead.ref, [brief(t, w) for t, w in active], [brief(t, w) for t, w in resolved],
                [brief(pk, "") for pk in g.dependents.get(bead.id, ())],
                brief(parent, "") if parent is not None else None,
                [brief(pk, "") for pk in g.children.get(bead.id, ())])


# -- writes ---------------------------------------------------------------------------------

def new_ref(repo: Repo, parent: Bead | None) -> str:
    """`<prefix>-<hash>` for a new bead, or `<parent>.<n>` for a child, as beads does."""
    if parent is not None:
        # the child lives in `repo`, which is not the parent's when the parent is in another repo
        siblings = Bead.select(Bead.ref).where(Bead.repo == repo.id, Bead.ref.startswith(parent.ref + "."))
        taken = {r.ref[len(parent.ref) + 1:] for r in siblings}
        n = 1
        while str(n) in taken:
            n += 1
        return f"{parent.ref}.{n}"
    for length in (4, 4, 5, 6, 8):
        ref = f"{repo.prefix}-{secrets.token_hex(4)[:length]}"
        if not Bead.select().where(Bead.repo == repo.id, Bead.ref == ref).exists():
            return ref
    raise InvalidInput("could not allocate a bead id")  # 2^-32 after five tries: effectively never


def create_bead(project_id: int, ws: Workspace, fields: dict[str, Any]) -> BeadView:
    """Create a bead in the caller's repo, with optional parent and blockers.

    Raises:
        BeadNotFound: the parent or a blocker does not exist.
        CycleError: never for a new bead, but kept for symmetry with `link`.
    """
    ts = now()
    with db.transaction() as uow:
        repo = Repo.get_by_id(ws.repo_id)
        parent = get_bead(project_id, repo.id, fields["parent"]) if fields.get("parent") else None
        blockers = [get_bead(project_id, repo.id, ref) for ref in fields.get("blocked_by") or []]
        stamp = iso(ts)
        labels = fields.get("labels") or []
        if fields.get("role"):
            labels = with_role(labels, fields["role"])
        row = {"project": project_id, "repo": repo.id, "title": fields["title"],
               "description": fields.get("description") or "", "status": "open",
               "priority": normalise_priority(fields.get("priority", 2)),
               "issue_type": fields.get("issue_type") or "task", "labels": json.dumps(labels),
               "created_ts": ts, "updated_ts": ts,
               "data": json.dumps({"created_at": stamp, "updated_at": stamp, "created_by": ws.alias})}
        bead = _insert_with_new_ref(repo, parent, row)
        ref = bead.ref
        if parent is not None:
            _insert_dep(bead, parent, PARENT_TYPE, ws.alias)
        for blocker in blockers:
            _insert_dep(bead, blocker, "blocks", ws.alias)
        outbox.record(uow, project_id, "bead.created",
                      {"bead": ref, "repo": repo.canonical, "alias": ws.alias, "title": bead.title},
                      workspace_id=ws.id, bead_ref=ref)
        announce_if_ready(uow, project_id, ws, [bead.id], "created")
    return bead_full(bead)


def _insert_with_new_ref(repo: Repo, parent: Bead | None, row: dict[str, Any]) -> Bead:
    """Insert the bead under a fresh id, taking the next one when a concurrent create got there first.

    On PostgreSQL two creates can pick the same `<parent>.<n>`; the unique index refuses the second.
    """
    for _ in range(DEFAULT_REF_ATTEMPTS):
        try:
            with db.database.atomic():  # savepoint: a lost race must not abort the caller's transaction
                return Bead.create(ref=new_ref(repo, parent), **row)
        except peewee.IntegrityError:
            continue
    raise Conflict("could not allocate a bead id: too many concurrent creates, try again")


def _target_written(bead: Bead, target: Bead) -> tuple[str, str]:
    return ("" if target.repo_id == bead.repo_id else target.repo.name, target.ref)


def _insert_dep(bead: Bead, target: Bead, dep_type: str, author: str) -> None:
    target_repo, target_ref = _target_written(bead, target)
    data = json.dumps({"created_at": iso(now()), "created_by": author})
    Dependency.insert(bead=bead.id, project=bead.project_id, target_repo=target_repo, target_ref=target_ref,
                      type=dep_type, data=data).on_conflict_ignore().execute()


def link(project_id: int, ws: Workspace, ref: str, target_ref: str, dep_type: str) -> DepView:
    """Make `ref` depend on `target_ref` (blocks or parent-child), refusing cycles.

    Raises:
        BeadNotFound: either bead is unknown.
        CycleError: the target already depends on `ref`.
    """
    with db.transaction() as uow:
        bead = get_bead(project_id, ws.repo_id, ref)
        target = get_bead(project_id, ws.repo_id, target_ref)
        graph = load_graph(project_id)
        if bead.id == target.id or graph.reaches(target.id, bead.id):
            raise CycleError(f"{target.ref} already depends on {bead.ref}: linking would make a cycle")
        if dep_type == PARENT_TYPE and bead.id in graph.parent:
            Dependency.delete().where(Dependency.bead == bead.id, Dependency.type == PARENT_TYPE).execute()
        _insert_dep(bead, target, dep_type, ws.alias)
        _touch(bead)
        outbox.record(uow, project_id, "bead.linked",
                      {"bead": bead.ref, "target": target.ref, "type": dep_type, "alias": ws.alias},
                      workspace_id=ws.id, bead_ref=bead.ref)
    written = f"{target.repo.name}:{target.ref}" if target.repo_id != bead.repo_id else target.ref
    return DepView({}, bead.ref, written, dep_type)


def add_comment(project_id: int, ws: Workspace, ref: str, text: str) -> CommentView:
    with db.transaction() as uow:
        bead = get_bead(project_id, ws.repo_id, ref)
        comment = Comment.create(bead=bead.id, author=ws.alias, text=text, created_at=iso(now()))
        _touch(bead)
        outbox.record(uow, project_id, "bead.commented", {"bead": bead.ref, "alias": ws.alias},
                      workspace_id=ws.id, bead_ref=bead.ref)
    return comment_view(comment)


def update_fields(project_id: int, ws: Workspace, ref: str, changes: dict[str, Any]) -> Bead:
    """Edit title, priority, description, labels, assignee (status changes go through claims)."""
    with db.transaction() as uow:
        bead = get_bead(project_id, ws.repo_id, ref)
        relabels = "add_labels" in changes or "remove_labels" in changes or "role" in changes
        before = {k: getattr(bead, k) for k in ("title", "priority", "description", "labels")
                  if k in changes or (k == "labels" and relabels)}
        if "title" in changes:
            bead.title = changes["title"]
        if "priority" in changes:
            bead.priority = normalise_priority(changes["priority"])
        if "description" in changes:
            bead.description = changes["description"]
        labels = [x for x in json.loads(bead.labels) if x not in (changes.get("remove_labels") or [])]
        labels += [x for x in changes.get("add_labels") or [] if x not in labels]
        if "role" in changes:
            labels = with_role(labels, changes["role"])
        bead.labels = json.dumps(labels)
        _touch(bead, save=False)
        bead.save(only=[f for f in Bead._meta.sorted_fields if f.name not in ("assignee", "assigned_by",
                                                                              "assign_reason")])
        after = {k: getattr(bead, k) for k in before}
        if set(changes) - {"assignee"}:
            outbox.record(uow, project_id, "bead.updated",
                          {"bead": bead.ref, "alias": ws.alias, "fields": sorted(changes),
                           "before": before, "after": after},
                          workspace_id=ws.id, bead_ref=bead.ref)
        if "assignee" in changes:  # the meaning of an assignment lives in one place
            actor = audit.acting(uow)
            by = actor if actor.kind != "system" else audit.agent(ws.alias)
            steer.set_assignee(uow, project_id, bead, changes["assignee"], by,
                               binding=steer.may_steer(actor, ws))
    return bead


def _touch(bead: Bead, save: bool = True) -> None:
    """Bump updated_at (column and the record's own string)."""
    ts = now()
    data = json.loads(bead.data)
    data["updated_at"] = iso(ts)
    bead.updated_ts, bead.data = ts, json.dumps(data)
    if save:
        Bead.update(updated_ts=ts, data=bead.data).where(Bead.id == bead.id).execute()


# -- status changes (store/claims.py: claims, releases, closes) --------------------------------

def change_status(uow: UnitOfWork, bead: Bead, status: str, actor: Workspace, assignee: str | None = None,
                  extra: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> None:
    """Change a bead's status (and record string), telling its subscribers when it changed."""
    if status != bead.status:
        tell_subscribers(uow, bead, status, actor)
    ts = now()
    data = status_data(bead, status, ts, extra, drop)
    bead.status, bead.updated_ts, bead.data = status, ts, data
    if assignee is not None:
        bead.assignee = assignee
    queries.save_status(bead)  # only the columns a status change touches


def tell_subscribers(uow: UnitOfWork, bead: Bead, status: str, actor: Workspace) -> None:
    notify_subscribers(uow, bead, actor, f"{bead.ref} is now {status} (by {actor.alias}): {bead.title[:80]}",
                       status)


def status_data(bead: Bead, status: str, ts: float, extra: dict[str, Any] | None = None,
                drop: tuple[str, ...] = ()) -> str:
    """The bead's `data` after a change to `status` at `ts`: its record's updated_at (and started_at)."""
    data = json.loads(bead.data)
    data["updated_at"] = iso(ts)
    if status == "in_progress" and bead.status != "in_progress":
        data["started_at"] = iso(ts)
    data.update(extra or {})
    for key in drop:
        data.pop(key, None)
    return json.dumps(data)
