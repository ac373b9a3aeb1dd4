"""Beads sync: a worktree's `.beads/issues.jsonl` and the server kept in step, both ways.

`POST /v1/sync` brings the file and the worktree's base (the file as the last sync left it). In
one transaction, with the repo's beads locked, every bead is merged three ways by the rules of
store/merge.py (base, file, server) and the server stays the arbiter:

- a change the file asks for is applied only when the same change through the API would be: the
  status of a bead another workspace holds is not changed (nor the bead deleted); that is reported
  as a conflict and the file gets the server's version back;
- a bead is deleted (tombstoned) only when the base had it and the file lost it; never with no base,
  in incremental mode, or from an empty file; and when that would tombstone more than 20 beads or
  10% of the repo's live ones, or any claimed bead, nothing is written without `allow_delete`;
- the answer carries the records the file must take: beads pulled from the server, merged ones,
  refused changes put back. A bead the file never knew is pulled in, never deleted.

The whole file is validated first: one bad line rejects the upload, naming the line. Each sync that
runs gets an id and keeps what it replaced (store/sync_history.py), so `undo_sync` can put it back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from store import Store, db, outbox, records, sync_history
from store.beads import get_bead, normalise_record
from store.errors import (
    AlreadyUndone,
    AmbiguousBead,
    BeadNotFound,
    Conflict,
    InvalidInput,
    SyncDeletes,
    SyncRejected,
)
from store.merge import STATUS_FIELDS, THEIRS, merge_beads, read_records
from store.merge import Conflict as MergeConflict
from store.messages import notify, notify_subscribers
from store.models import Bead, Claim, Comment, Dependency, Event, Project, Repo, SyncRun, Workspace
from store.unit import UnitOfWork
from store.util import iso, json_depth_over, now

#: Deepest nesting of arrays and objects in one beads record (real ones have 3 or 4).
MAX_RECORD_DEPTH = 32
#: Rows per INSERT statement (SQLite's variable limit is 32766; 12 columns a row).
DEFAULT_BATCH = 500
#: A sync tombstoning more than this many beads, or more than this share of the repo's live beads,
#: or any claimed bead, changes nothing unless `allow_delete` is given.
DEFAULT_MAX_QUIET_DELETES = 20
DEFAULT_MAX_QUIET_SHARE = 0.10
#: Beads updated or tombstoned past which the Activity event marks a sync as a mass change.
DEFAULT_MASS_CHANGE = 20
#: How conflicts name the two sides of the merge.
SIDE_NAMES = {"ours": "file", "theirs": "server"}
#: Beads that `file_records` answers at most.
MAX_RECORDS = 200
_JSON_TAIL = re.compile(r"\s*(?:starting )?at$")


@dataclass
class Parsed:
    """One line of an uploaded file: the record as written and its normalised form."""

    raw: dict[str, Any]
    rec: dict[str, Any]


# -- parsing ---------------------------------------------------------------------------------

def parse_jsonl(text: str, max_line: int, max_records: int, what: str = "") -> dict[str, Parsed]:
    """Parse and validate every line, by bead id; a later line with the same id wins.

    Raises:
        SyncRejected: a line is not JSON, has a wrong field, is too long, or there are too many.
    """
    found: dict[str, Parsed] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{what}line {number}"
        if len(line) > max_line:
            raise SyncRejected(f"{where}: longer than {max_line} characters", line=number)
        raw = _json(line, where, number)
        if json_depth_over(raw, MAX_RECORD_DEPTH):
            raise SyncRejected(f"{where}: nested deeper than {MAX_RECORD_DEPTH} levels", line=number)
        try:
            rec = normalise_record(raw)
        except InvalidInput as exc:
            raise SyncRejected(f"{where}: {exc.message}", line=number) from None
        found.pop(rec["ref"], None)
        found[rec["ref"]] = Parsed(raw, rec)
        if len(found) > max_records:
            raise SyncRejected(f"more than {max_records} beads in one upload", line=number)
    return found


def _parse_base(text: str) -> dict[str, dict[str, Any]]:
    """The base's records by id. Only read, not validated like the file: the merge never writes a
    value that only the base has (it decides what changed, the file and the server supply values).

    Raises:
        SyncRejected: a line is not a JSON object with an id.
    """
    try:
        return read_records(text)[0]
    except ValueError as exc:
        raise SyncRejected(f"base {exc}") from None


def _json(line: str, where: str, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        # Python's messages end in "at" ("Unterminated string starting at"): the column says where
        reason = _JSON_TAIL.sub("", exc.msg)
        reason = reason[:1].lower() + reason[1:]
        raise SyncRejected(f"{where}, column {exc.colno}: not valid JSON ({reason})", line=number,
                           column=exc.colno) from None
    except RecursionError:  # nested far too deep for the parser itself
        raise SyncRejected(f"{where}: nested deeper than {MAX_RECORD_DEPTH} levels", line=number) from None


# -- planning --------------------------------------------------------------------------------

@dataclass
class _Plan:
    """What a sync will do: on the server, and to the file."""

    ws: Workspace
    beads: dict[str, Bead]
    theirs: dict[str, dict[str, Any]]
    ours: dict[str, dict[str, Any]]
    holders: dict[int, Workspace]
    final: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    creates: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)
    #: same meaning, another spelling: only the record kept for writing back changes
    respell: list[str] = field(default_factory=list)
    file_writes: list[str] = field(default_factory=list)
    unchanged: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def holder(self, ref: str) -> Workspace | None:
        bead = self.beads.get(ref)
        return self.holders.get(bead.id) if bead is not None else None

    def kept(self, ref: str) -> dict[str, Any]:
        """The record a bead the server keeps (creates, updates) ends with."""
        rec = self.final[ref]
        assert rec is not None, ref  # only tombstones end as None, and they are not kept
        return rec

    def foreign_holder(self, ref: str) -> Workspace | None:
        holder = self.holder(ref)
        return holder if holder is not None and holder.id != self.ws.id else None


def _plan(ws: Workspace, beads: list[Bead], holders: dict[int, Workspace], ours: dict[str, Parsed],
          base: dict[str, dict[str, Any]] | None, deletions: bool, pull: bool) -> _Plan:
    exported = records.export(beads)
    by_ref = {b.ref: b for b in beads}
    plan = _Plan(ws, by_ref, {b.ref: exported[b.id] for b in beads}, {ref: p.raw for ref, p in ours.items()},
                 holders)
    known = set(ours) | set(base or ())
    # a tombstone the file never knew stays out of it; with `pull` off only the file's beads count
    theirs = {ref: rec for ref, rec in plan.theirs.items()
              if (pull or ref in ours) and (ref in known or by_ref[ref].status != "tombstone")}
    merged = merge_beads(base, plan.ours, theirs, prefer=THEIRS, deletions=deletions and bool(ours),
                         theirs_deletes=False, stale_ours=True)
    plan.conflicts = [_named(c) for c in merged.conflicts]
    for ref in merged.order:
        _decide(plan, ref, merged.records[ref])
    for conflict in plan.conflicts:
        holder = plan.foreign_holder(conflict["id"])
        if holder is not None and "held by" not in conflict["reason"]:
            conflict["reason"] += f" ({conflict['id']} is held by {holder.alias})"
    return plan


def _named(conflict: MergeConflict) -> dict[str, Any]:
    out = conflict.as_dict()
    out["kept"] = SIDE_NAMES.get(out["kept"], out["kept"])
    out["reason"] = out["reason"].replace("ours", "the file's").replace("theirs", "the server's")
    return out


def _decide(plan: _Plan, ref: str, rec: dict[str, Any] | None) -> None:
    """Sort one bead's merged record into the plan, applying the claim rule."""
    o, t = plan.ours.get(ref), plan.theirs.get(ref)
    if rec is None:
        rec = _deletion(plan, ref, t)
    elif t is not None and rec != t:
        rec = _change(plan, ref, rec, t)
    elif t is None:
        plan.creates.append(ref)
    plan.final[ref] = rec
    if rec is not None and rec != o:
        plan.file_writes.append(ref)
    elif o is not None:  # the file has it as the server has it (perhaps spelled its own way)
        plan.unchanged += 1


def _deletion(plan: _Plan, ref: str, t: dict[str, Any] | None) -> dict[str, Any] | None:
    if t is None or t.get("status") == "tombstone":
        return None
    holder = plan.foreign_holder(ref)
    if holder is not None:
        plan.conflicts.append({"id": ref, "field": "record", "kept": "server", "value": "kept", "lost": "deleted",
                               "reason": f"{ref} is held by {holder.alias}: not deleted"})
        return t
    plan.tombstones.append(ref)
    return None


def _change(plan: _Plan, ref: str, rec: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    holder = plan.foreign_holder(ref)
    if holder is not None and _group(rec) != _group(t):
        # the claim rule decides, whatever the merge said about the status
        plan.conflicts = [c for c in plan.conflicts if (c["id"], c["field"]) != (ref, "status")]
        plan.conflicts.append({"id": ref, "field": "status", "kept": "server", "value": t.get("status"),
                               "lost": rec.get("status"),
                               "reason": f"{ref} is held by {holder.alias}: the status {rec.get('status')} "
                                         "was not applied"})
        rec = _with_status_of(rec, t)
    if _but_stamp(rec) == _but_stamp(t):
        return t  # nothing left to change but the edit time
    if _same_meaning(rec, t):
        plan.respell.append(ref)
    else:
        plan.updates.append(ref)
    return rec


def _but_stamp(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "updated_at"}


def _group(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(name) for name in STATUS_FIELDS)


def _with_status_of(rec: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in STATUS_FIELDS or k in source}
    for name in STATUS_FIELDS:
        if name in source:
            out[name] = source[name]
    return out


def _same_meaning(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two records differ only in spelling (`"P1"` and `1`, an absent and an empty field)."""
    try:
        na, nb = normalise_record(a), normalise_record(b)
    except InvalidInput:
        return False
    deps = {(d["depends_on_id"], d["type"]) for d in na.pop("dependencies")}
    return deps == {(d["depends_on_id"], d["type"]) for d in nb.pop("dependencies")} and na == nb


def _guard(plan: _Plan, beads: list[Bead]) -> dict[str, Any] | None:
    """Why this sync needs `allow_delete` (None: it does not)."""
    gone = plan.tombstones
    live = sum(1 for b in beads if b.status != "tombstone")
    claimed = [ref for ref in gone if plan.holder(ref) is not None]
    if len(gone) > DEFAULT_MAX_QUIET_DELETES or len(gone) > DEFAULT_MAX_QUIET_SHARE * live or claimed:
        return {"would_delete": gone, "claimed": claimed, "live": live}
    return None


# -- the sync --------------------------------------------------------------------------------

def sync_beads(st: Store, project: Project, ws: Workspace, text: str, *, base_text: str | None = None,
               mode: str = "full", dry_run: bool = False, allow_delete: bool = False,
               pull: bool = True) -> dict[str, Any]:
    """Merge the caller's beads file into its repo, in one transaction; the records the file takes.

    Raises:
        SyncRejected: the file or the base is malformed (nothing written).
        SyncDeletes: the deletions need `allow_delete` (nothing written).
    """
    limits = (st.settings.max_line, st.settings.max_sync_beads)
    ours = parse_jsonl(text, *limits)
    base = None if base_text is None else _parse_base(base_text)
    with db.transaction() as uow:
        repo = _locked_repo(ws.repo_id)
        beads = _locked_beads(repo.id)
        plan = _plan(ws, beads, _holders(repo.id), ours, base, mode == "full" and base is not None, pull)
        guard = _guard(plan, beads)
        if guard and not dry_run and not allow_delete:
            raise _refusal(guard)
        if dry_run:
            return _answer(plan, repo, None, plan.final, dry_run=True, guard=guard)
        run, fresh = _apply(uow, project, ws, repo, plan)
    return _answer(plan, repo, run, fresh, guard=guard)


def _refusal(guard: dict[str, Any]) -> SyncDeletes:
    gone, claimed, live = guard["would_delete"], guard["claimed"], guard["live"]
    why = f"{len(gone)} of the repo's {live} live beads"
    if claimed:
        why += f", {len(claimed)} of them claimed"
    return SyncDeletes(f"this sync would tombstone {why}: nothing was changed", would_delete=gone,
                       claimed=claimed, live=live,
                       hint="check with `wire sync --dry-run`; run `wire sync --allow-delete` if that is meant")


def _locked_repo(repo_id: int) -> Repo:
    """The repo row, locked on PostgreSQL so syncs of one repo run one at a time (SQLite's write
    transaction is exclusive already)."""
    query = Repo.select().where(Repo.id == repo_id)
    return (query if db.is_sqlite() else query.for_update()).get()


def _locked_beads(repo_id: int) -> list[Bead]:
    """The repo's beads, rows locked on PostgreSQL: a claim racing the sync waits for it (claims.py
    locks the bead row too), so no claim is lost to a status the sync read before it."""
    query = Bead.select().where(Bead.repo == repo_id).order_by(Bead.id)
    return list(query if db.is_sqlite() else query.for_update())


def _holders(repo_id: int) -> dict[int, Workspace]:
    query = Claim.select(Claim, Workspace).join(Workspace).switch(Claim).join(Bead).where(Bead.repo == repo_id)
    return {c.bead_id: c.workspace for c in query}


def _answer(plan: _Plan, repo: Repo, run: SyncRun | None, final: dict[str, dict[str, Any] | None], *,
            dry_run: bool = False, guard: dict[str, Any] | None = None) -> dict[str, Any]:
    pulled = [ref for ref in plan.file_writes if final.get(ref) is not None]
    out: dict[str, Any] = {
        "sync": run.id if run else None, "dry_run": dry_run, "repo": repo.canonical, "total": len(plan.ours),
        "created": len(plan.creates), "updated": len(plan.updates), "tombstoned": len(plan.tombstones),
        "unchanged": plan.unchanged, "pulled": len(pulled), "conflicts": plan.conflicts,
        "changes": {"created": plan.creates, "updated": plan.updates, "tombstoned": plan.tombstones,
                    "pulled": pulled},
        "needs_allow_delete": guard is not None, "mass": _is_mass(plan),
    }
    if not dry_run:
        out["records"] = [final[ref] for ref in pulled]
    return out


def _is_mass(plan: _Plan) -> bool:
    live = sum(1 for b in plan.beads.values() if b.status != "tombstone")
    changed = len(plan.updates) + len(plan.tombstones)
    return changed > DEFAULT_MASS_CHANGE or len(plan.tombstones) > DEFAULT_MAX_QUIET_SHARE * max(live, 1)


# -- applying --------------------------------------------------------------------------------

def _apply(uow: UnitOfWork,
           project: Project, ws: Workspace, repo: Repo, plan: _Plan) -> tuple[SyncRun, dict[str, Any]]:
    """Write the plan; returns the run and the record of every bead the file takes, as it now is."""
    from store import readiness

    was_ready = readiness.ready_set(project.id) if plan.creates or plan.updates or plan.tombstones else None
    run = sync_history.start(project, repo, ws)
    changed = [plan.beads[ref] for ref in plan.updates + plan.tombstones]
    before = sync_history.snapshots(changed)
    for ref in plan.respell:
        rec = plan.kept(ref)
        Bead.update(raw=json.dumps(rec), digest=records.digest(rec)).where(Bead.id == plan.beads[ref].id).execute()
    created = _insert_new(project, repo, [plan.kept(ref) for ref in plan.creates])
    for ref in plan.updates:
        _update(project, ws, plan.beads[ref], plan.kept(ref), plan.holder(ref))
    for ref in plan.tombstones:
        tombstone(plan.beads[ref], ws, f"deleted from the beads file (sync #{run.id})", plan.holder(ref))
    pks = {**{ref: plan.beads[ref].id for ref in plan.updates + plan.tombstones + plan.respell}, **created}
    fresh = {ref: rec for ref, rec in plan.final.items() if rec is not None}
    now_beads = list(Bead.select().where(Bead.id.in_(list(pks.values())))) if pks else []
    for bead, rec in zip(now_beads, records.export(now_beads).values(), strict=True):
        fresh[bead.ref] = rec
    actions = [(ref, "created") for ref in plan.creates] + [(ref, "updated") for ref in plan.updates]
    actions += [(ref, "tombstoned") for ref in plan.tombstones]
    sync_history.record(run, [(pks[ref], action, before.get(pks[ref], ""), records.digest(fresh[ref]))
                              for ref, action in actions])
    _tell(uow, project, ws, run, plan, fresh, {b.ref: b for b in now_beads})
    counts = {"created": len(plan.creates), "updated": len(plan.updates), "tombstoned": len(plan.tombstones),
              "unchanged": plan.unchanged, "pulled": sum(1 for ref in plan.file_writes if fresh.get(ref)),
              "conflicts": len(plan.conflicts)}
    sync_history.finish(run, counts)
    _learn_prefix(repo, list(plan.ours))
    outbox.record(uow, project.id, "beads.synced", {"alias": ws.alias, "sync": run.id, "repo": repo.canonical,
                                               "total": len(plan.ours), "mass": _is_mass(plan), **counts},
                  workspace_id=ws.id)
    if was_ready is not None:  # a blocker closed in the file wakes whoever waits for its dependents
        readiness.announce_newly_ready(uow, project.id, ws, was_ready, "synced")
    return run, fresh


def _learn_prefix(repo: Repo, refs: list[str]) -> None:
    """New beads get the prefix most of the repo's ids use (`gt-…`), `bd` when there are none."""
    prefixes = Counter(ref.split("-", 1)[0] for ref in refs if "-" in ref)
    if prefixes:
        prefix = prefixes.most_common(1)[0][0][:40]
        if prefix != repo.prefix:
            Repo.update(prefix=prefix).where(Repo.id == repo.id).execute()


def _row(project: Project, repo: Repo, rec: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    return {"project": project.id, "repo": repo.id, "ref": rec["ref"], "title": rec["title"],
            "description": rec["description"], "status": rec["status"], "priority": rec["priority"],
            "issue_type": rec["issue_type"], "assignee": rec["assignee"], "labels": json.dumps(rec["labels"]),
            "created_ts": rec["created_ts"], "updated_ts": rec["updated_ts"], "defer_ts": rec["defer_ts"],
            "data": json.dumps(rec["extra"]), "digest": records.digest(raw), "raw": json.dumps(raw)}


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return normalise_record(raw)
    except InvalidInput as exc:  # a merge of two valid records is valid; kept as a clear error anyway
        raise SyncRejected(f"{raw.get('id')}: {exc.message}") from None


def _insert_new(project: Project, repo: Repo, raws: list[dict[str, Any]]) -> dict[str, int]:
    """Insert beads with their dependencies and comments; returns their ids by ref."""
    recs = [_normalised(raw) for raw in raws]
    rows = [_row(project, repo, rec, raw) for rec, raw in zip(recs, raws, strict=True)]
    for start in range(0, len(rows), DEFAULT_BATCH):
        Bead.insert_many(rows[start:start + DEFAULT_BATCH]).execute()
    if not recs:
        return {}
    refs = {r["ref"] for r in recs}
    pks = {ref: pk for pk, ref in Bead.select(Bead.id, Bead.ref).where(Bead.repo == repo.id).tuples() if ref in refs}
    deps, comments = [], []
    for rec in recs:
        deps.extend(_dep_rows(project, pks[rec["ref"]], rec))
        comments.extend(_comment_rows(pks[rec["ref"]], rec["comments"]))
    for start in range(0, len(deps), DEFAULT_BATCH):
        Dependency.insert_many(deps[start:start + DEFAULT_BATCH]).on_conflict_ignore().execute()
    for start in range(0, len(comments), DEFAULT_BATCH):
        Comment.insert_many(comments[start:start + DEFAULT_BATCH]).execute()
    return pks


def _dep_rows(project: Project, pk: int, rec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for dep in rec["dependencies"]:
        target_repo, _, target_ref = dep["depends_on_id"].rpartition(":")
        extra = {k: v for k, v in dep.items() if k not in ("issue_id", "depends_on_id", "type")}
        rows.append({"bead": pk, "project": project.id, "target_repo": target_repo, "target_ref": target_ref,
                     "type": dep["type"], "data": json.dumps(extra)})
    return rows


def _comment_rows(pk: int, comments: list[dict[str, Any]], known: Counter | None = None) -> list[dict[str, Any]]:
    """Rows for the comments not already there (`known`: how many of each (author, text) exist)."""
    known = Counter(known or ())
    rows = []
    for c in comments:
        key = (str(c.get("author") or ""), c.get("text") or "")
        if known[key] > 0:
            known[key] -= 1
            continue
        extra = {k: v for k, v in c.items() if k not in ("id", "author", "text", "created_at")}
        rows.append({"bead": pk, "ext_id": str(c.get("id") if c.get("id") is not None else ""),
                     "author": key[0], "text": key[1], "created_at": str(c.get("created_at") or ""),
                     "data": json.dumps(extra)})
    return rows


def _update(project: Project, ws: Workspace, bead: Bead, raw: dict[str, Any], holder: Workspace | None) -> None:
    """Make the bead what the merged record says (comments only grow: the merge kept them all)."""
    rec = _normalised(raw)
    row = _row(project, Repo(id=bead.repo_id), rec, raw)
    Bead.update(**{k: v for k, v in row.items() if k not in ("project", "repo", "ref")}).where(
        Bead.id == bead.id).execute()
    Dependency.delete().where(Dependency.bead == bead.id).execute()
    deps = _dep_rows(project, bead.id, rec)
    if deps:
        Dependency.insert_many(deps).on_conflict_ignore().execute()
    known = Counter(Comment.select(Comment.author, Comment.text).where(Comment.bead == bead.id).tuples())
    comments = _comment_rows(bead.id, rec["comments"], known)
    if comments:
        Comment.insert_many(comments).execute()
    # the holder released or closed it in the file (another holder's status is never changed here)
    if holder is not None and holder.id == ws.id and rec["status"] != "in_progress":
        Claim.delete().where(Claim.bead == bead.id).execute()


def tombstone(bead: Bead, ws: Workspace, reason: str, holder: Workspace | None) -> None:
    """Mark a bead deleted as the beads format does (status tombstone, deleted_* fields); drops its claim."""
    ts = now()
    data = json.loads(bead.data)
    data.update({"deleted_at": iso(ts), "deleted_by": ws.alias, "delete_reason": reason,
                 "original_type": bead.issue_type, "updated_at": iso(ts)})
    Bead.update(status="tombstone", updated_ts=ts, data=json.dumps(data)).where(Bead.id == bead.id).execute()
    if holder is not None:
        Claim.delete().where(Claim.bead == bead.id).execute()


# -- telling people --------------------------------------------------------------------------

def _tell(uow: UnitOfWork,
          project: Project, ws: Workspace, run: SyncRun, plan: _Plan, fresh: dict[str, dict[str, Any]],
          now_beads: dict[str, Bead]) -> None:
    """History on each bead (audit events), notices to holders and subscribers."""
    events = []
    for ref in plan.creates + plan.updates + plan.tombstones:
        action = "created" if ref in plan.creates else "updated" if ref in plan.updates else "tombstoned"
        before, after = plan.theirs.get(ref) or {}, fresh[ref]
        fields = sorted(k for k in {*before, *after} if before.get(k) != after.get(k) and k != "updated_at")
        events.append(_event(project, ws, "bead.synced", ref, {"sync": run.id, "action": action, "fields": fields}))
        if before and before.get("status") != after.get("status"):
            notify_subscribers(uow, now_beads[ref], ws, f"{ref} is now {after.get('status')} (synced by {ws.alias}, "
                               f"sync #{run.id}): {str(after.get('title', ''))[:80]}", str(after.get("status")))
        holder = plan.foreign_holder(ref)
        if holder is not None and fields:
            notify(uow, project.id, holder.id, f"{ref} (you hold it) was changed by {ws.alias}'s sync #{run.id}: "
                   f"{', '.join(fields)}", {"bead": ref, "event": "bead.synced", "sync": run.id, "by": ws.alias})
    for conflict in plan.conflicts:
        events.append(_event(project, ws, "bead.sync_conflict", conflict["id"], {"sync": run.id, **conflict}))
    for start in range(0, len(events), DEFAULT_BATCH):
        Event.insert_many(events[start:start + DEFAULT_BATCH]).execute()


def _event(project: Project, ws: Workspace, kind: str, ref: str, data: dict[str, Any]) -> dict[str, Any]:
    """An audit event only (the bead's history): the sync as a whole is one Activity event."""
    ts = now()
    return {"project": project.id, "kind": kind, "workspace_id": ws.id, "bead_ref": ref,
            "data": json.dumps({**data, "alias": ws.alias, "ts": ts}), "created_ts": ts}


# -- reading records and undoing --------------------------------------------------------------

def file_records(project: Project, ws: Workspace, refs: list[str]) -> dict[str, Any]:
    """The beads-file records of these beads, those of the caller's repo only (write-through)."""
    found: dict[int, Bead] = {}
    for ref in refs[:MAX_RECORDS]:
        try:
            bead = get_bead(project.id, ws.repo_id, ref)
        except (BeadNotFound, AmbiguousBead):
            continue
        if bead.repo_id == ws.repo_id:
            found[bead.id] = bead
    repo = Repo.get_by_id(ws.repo_id)
    return {"repo": repo.canonical, "records": list(records.export(found.values()).values())}


def history(project: Project, ws: Workspace, limit: int) -> list[dict[str, Any]]:
    return sync_history.history(project, ws.repo_id, limit)


def undo_sync(st: Store, project: Project, ws: Workspace, run_id: int) -> dict[str, Any]:
    """Put every bead a sync changed back as it was before, as a new change (itself undoable).

    A bead changed again since that sync is left as it is and reported; so is one whose status
    another workspace's claim protects. Beads the sync created are tombstoned.

    Raises:
        SyncNotFound: no such sync in the project.
        AlreadyUndone: it was undone already.
        Conflict: the sync was of another repo (undo it from a worktree of that repo).
    """
    with db.transaction() as uow:
        run = sync_history.get_run(project, run_id)
        if run.repo_id != ws.repo_id:
            raise Conflict(f"sync #{run.id} was of another repo: undo it from a worktree of that repo")
        if run.undone_by:
            raise AlreadyUndone(f"sync #{run.id} was undone already, by #{run.undone_by}")
        repo = _locked_repo(ws.repo_id)
        beads = {b.id: b for b in _locked_beads(repo.id)}
        holders = _holders(repo.id)
        changes = sync_history.changes_of(run)
        current = records.export(beads[c.bead_id] for c in changes if c.bead_id in beads)
        undo = sync_history.start(project, repo, ws, "undo", undo_of=run.id)
        done, conflicts = _undo_each(uow, project, ws, run, changes, beads, holders, current)
        SyncRun.update(undone_by=undo.id).where(SyncRun.id == run.id).execute()
        after = list(Bead.select().where(Bead.id.in_([pk for pk, _ in done]))) if done else []
        fresh = {b.id: rec for b, rec in zip(after, records.export(after).values(), strict=True)}
        before = {pk: snap for pk, snap in done}
        sync_history.record(undo, [(pk, "restored", before[pk], records.digest(fresh[pk])) for pk in fresh])
        counts = {"restored": len(done), "conflicts": len(conflicts)}
        sync_history.finish(undo, counts)
        outbox.record(uow, project.id, "beads.sync_undone", {"alias": ws.alias, "sync": undo.id, "undo_of": run.id,
                                                        "repo": repo.canonical, **counts}, workspace_id=ws.id)
    return {"sync": undo.id, "undo_of": run.id, **counts, "conflicts": conflicts,
            "records": list(fresh.values())}


def _undo_each(uow: UnitOfWork,
               project: Project, ws: Workspace, run: SyncRun, changes: list, beads: dict[int, Bead],
               holders: dict[int, Workspace], current: dict[int, dict[str, Any]]
               ) -> tuple[list[tuple[int, str]], list[dict[str, Any]]]:
    """Restore each change that nothing touched since; (bead id, its snapshot now) of those done."""
    done, conflicts = [], []
    snaps = sync_history.snapshots(beads[c.bead_id] for c in changes if c.bead_id in beads)
    for change in changes:
        bead = beads.get(change.bead_id)
        if bead is None:
            continue
        holder = holders.get(bead.id)
        if records.digest(current[bead.id]) != change.after:
            conflicts.append({"id": bead.ref, "reason": f"changed since sync #{run.id}: left as it is"})
            continue
        target = "tombstone" if change.action == "created" else json.loads(change.before)["row"]["status"]
        if holder is not None and holder.id != ws.id and target != bead.status:
            conflicts.append({"id": bead.ref, "reason": f"held by {holder.alias}: its status stays {bead.status}"})
            continue
        old_status = bead.status
        if change.action == "created":
            tombstone(bead, ws, f"created by sync #{run.id}, which was undone", holder)
        else:
            _restore(uow, project, ws, bead, change.before, holder)
        done.append((bead.id, snaps[bead.id]))
        restored = Bead.get_by_id(bead.id)
        _event_undo(uow, project, ws, run, restored, old_status)
    return done, conflicts


def _restore(uow: UnitOfWork,
             project: Project, ws: Workspace, bead: Bead, before: str, holder: Workspace | None) -> None:
    claim = sync_history.restore(bead, before)
    restored = Bead.get_by_id(bead.id)
    if holder is not None and holder.id == ws.id and restored.status != "in_progress":
        Claim.delete().where(Claim.bead == bead.id).execute()
    if claim is None or holder is not None:
        return
    owner = Workspace.get_or_none(Workspace.id == claim["workspace"], Workspace.revoked == False)
    if owner is None or restored.status != "in_progress":
        return
    Claim.insert(project=project.id, bead=bead.id, workspace=owner.id, claimed_ts=claim["claimed_ts"],
                 reason=claim.get("reason") or "", stale=False).on_conflict_ignore().execute()
    if owner.id != ws.id:
        notify(uow, project.id, owner.id, f"your claim on {bead.ref} is back: {ws.alias} undid the sync that had "
               "removed it", {"bead": bead.ref, "event": "claim.restored", "by": ws.alias})


def _event_undo(uow: UnitOfWork,
                project: Project, ws: Workspace, run: SyncRun, bead: Bead, old_status: str) -> None:
    Event.insert(**_event(project, ws, "bead.sync_undone", bead.ref, {"sync": run.id})).execute()
    if bead.status != old_status:
        notify_subscribers(uow, bead, ws, f"{bead.ref} is now {bead.status} ({ws.alias} undid sync #{run.id}): "
                           f"{bead.title[:80]}", bead.status)
