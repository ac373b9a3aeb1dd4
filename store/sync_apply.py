"""Beads sync, second half: a plan (store/sync_plan.py) written to the database, and people told.

Runs inside the sync's transaction, with the repo's beads locked (store/sync.py).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from store import outbox, readiness, records, sync_history
from store.beads import normalise_record
from store.errors import InvalidInput, SyncRejected
from store.messages import notify, notify_subscribers
from store.models import Bead, Claim, Comment, Dependency, Event, Project, Repo, SyncRun, Workspace
from store.sync_plan import Plan, is_mass
from store.unit import UnitOfWork
from store.util import iso, now

#: Rows per INSERT statement (SQLite's variable limit is 32766; 12 columns a row).
DEFAULT_BATCH = 500


# -- applying --------------------------------------------------------------------------------

def apply_plan(uow: UnitOfWork, project: Project, ws: Workspace, repo: Repo,
               plan: Plan) -> tuple[SyncRun, dict[str, Any]]:
    """Write the plan; returns the run and the record of every bead the file takes, as it now is."""
    was_ready = readiness.ready_set(project.id) if plan.creates or plan.updates or plan.tombstones else None
    run = sync_history.start(project, repo, ws)
    changed = [plan.beads[ref] for ref in plan.updates + plan.tombstones]
    before = sync_history.snapshots(changed)
    for ref in plan.respell:
        rec = plan.kept(ref)
        respelt = Bead.update(raw=json.dumps(rec), digest=records.digest(rec))
        respelt.where(Bead.id == plan.beads[ref].id).execute()
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
                                               "total": len(plan.ours), "mass": is_mass(plan), **counts},
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
    in_repo = Bead.select(Bead.id, Bead.ref).where(Bead.repo == repo.id).tuples()
    pks = {ref: pk for pk, ref in in_repo if ref in refs}
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


def _comment_rows(pk: int, comments: list[dict[str, Any]],
                  known: Counter | None = None) -> list[dict[str, Any]]:
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


def _update(project: Project, ws: Workspace, bead: Bead, raw: dict[str, Any],
            holder: Workspace | None) -> None:
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

def _tell(uow: UnitOfWork, project: Project, ws: Workspace, run: SyncRun, plan: Plan,
          fresh: dict[str, dict[str, Any]], now_beads: dict[str, Bead]) -> None:
    """History on each bead (audit events), notices to holders and subscribers."""
    events = []
    for ref in plan.creates + plan.updates + plan.tombstones:
        action = "created" if ref in plan.creates else "updated" if ref in plan.updates else "tombstoned"
        before, after = plan.theirs.get(ref) or {}, fresh[ref]
        fields = sorted(k for k in {*before, *after} if before.get(k) != after.get(k) and k != "updated_at")
        events.append(event_row(project, ws, "bead.synced", ref,
                                {"sync": run.id, "action": action, "fields": fields}))
        if before and before.get("status") != after.get("status"):
            notify_subscribers(uow, now_beads[ref], ws,
                               f"{ref} is now {after.get('status')} (synced by {ws.alias}, "
                               f"sync #{run.id}): {str(after.get('title', ''))[:80]}",
                               str(after.get("status")))
        holder = plan.foreign_holder(ref)
        if holder is not None and fields:
            notify(uow, project.id, holder.id,
                   f"{ref} (you hold it) was changed by {ws.alias}'s sync #{run.id}: {', '.join(fields)}",
                   {"bead": ref, "event": "bead.synced", "sync": run.id, "by": ws.alias})
    for conflict in plan.conflicts:
        events.append(event_row(project, ws, "bead.sync_conflict", conflict["id"],
                                {"sync": run.id, **conflict}))
    for start in range(0, len(events), DEFAULT_BATCH):
        Event.insert_many(events[start:start + DEFAULT_BATCH]).execute()


def event_row(project: Project, ws: Workspace, kind: str, ref: str, data: dict[str, Any]) -> dict[str, Any]:
    """An audit event only (the bead's history): the sync as a whole is one Activity event."""
    ts = now()
    return {"project": project.id, "kind": kind, "workspace_id": ws.id, "bead_ref": ref,
            "data": json.dumps({**data, "alias": ws.alias, "ts": ts}), "created_ts": ts}
