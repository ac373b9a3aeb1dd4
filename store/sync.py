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
from typing import Any

from store import Store, db, outbox, records, sync_history
from store.beads import get_bead
from store.errors import AlreadyUndone, AmbiguousBead, BeadNotFound, Conflict, SyncDeletes
from store.messages import notify, notify_subscribers
from store.models import Bead, Claim, Event, Project, Repo, SyncRun, Workspace
from store.sync_apply import apply_plan, event_row, tombstone
from store.sync_plan import Plan, deletion_guard, is_mass, make_plan, parse_base, parse_jsonl
from store.syncviews import (
    SyncChangesView,
    SyncConflictView,
    SyncRecordsView,
    SyncResultView,
    SyncRunView,
    SyncUndoneView,
)
from store.unit import UnitOfWork

#: Beads that `file_records` answers at most.
MAX_RECORDS = 200


# -- the sync --------------------------------------------------------------------------------

def sync_beads(st: Store, project: Project, ws: Workspace, text: str, *, base_text: str | None = None,
               mode: str = "full", dry_run: bool = False, allow_delete: bool = False,
               pull: bool = True) -> SyncResultView:
    """Merge the caller's beads file into its repo, in one transaction; the records the file takes.

    Raises:
        SyncRejected: the file or the base is malformed (nothing written).
        SyncDeletes: the deletions need `allow_delete` (nothing written).
    """
    limits = (st.settings.max_line, st.settings.max_sync_beads)
    ours = parse_jsonl(text, *limits)
    base = None if base_text is None else parse_base(base_text)
    with db.transaction() as uow:
        repo = _locked_repo(ws.repo_id)
        beads = _locked_beads(repo.id)
        plan = make_plan(ws, beads, _holders(repo.id), ours, base, mode == "full" and base is not None, pull)
        guard = deletion_guard(plan, beads)
        if guard and not dry_run and not allow_delete:
            raise _refusal(guard)
        if dry_run:
            return _answer(plan, repo, None, plan.final, dry_run=True, guard=guard)
        run, fresh = apply_plan(uow, project, ws, repo, plan)
    return _answer(plan, repo, run, fresh, guard=guard)


def _refusal(guard: dict[str, Any]) -> SyncDeletes:
    gone, claimed, live = guard["would_delete"], guard["claimed"], guard["live"]
    why = f"{len(gone)} of the repo's {live} live beads"
    if claimed:
        why += f", {len(claimed)} of them claimed"
    return SyncDeletes(f"this sync would tombstone {why}: nothing was changed", would_delete=gone,
                       claimed=claimed, live=live,
                       hint="check with `wire sync --dry-run`; "
                            "run `wire sync --allow-delete` if that is meant")


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
    query = (Claim.select(Claim, Workspace).join(Workspace).switch(Claim).join(Bead)
             .where(Bead.repo == repo_id))
    return {c.bead_id: c.workspace for c in query}


def _answer(plan: Plan, repo: Repo, run: SyncRun | None, final: dict[str, dict[str, Any] | None], *,
            dry_run: bool = False, guard: dict[str, Any] | None = None) -> SyncResultView:
    pulled = [ref for ref in plan.file_writes if final.get(ref) is not None]
    answer = SyncResultView(
        sync=run.id if run else None, dry_run=dry_run, repo=repo.canonical, total=len(plan.ours),
        created=len(plan.creates), updated=len(plan.updates), tombstoned=len(plan.tombstones),
        unchanged=plan.unchanged, pulled=len(pulled),
        conflicts=[SyncConflictView.of(c) for c in plan.conflicts],
        changes=SyncChangesView(plan.creates, plan.updates, plan.tombstones, pulled),
        needs_allow_delete=guard is not None, mass=is_mass(plan))
    if not dry_run:
        answer.records = [final[ref] for ref in pulled]
    return answer


# -- reading records and undoing --------------------------------------------------------------

def file_records(project: Project, ws: Workspace, refs: list[str]) -> SyncRecordsView:
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
    return SyncRecordsView(repo.canonical, list(records.export(found.values()).values()))


def history(project: Project, ws: Workspace, limit: int) -> list[SyncRunView]:
    return sync_history.history(project, ws.repo_id, limit)


def undo_sync(st: Store, project: Project, ws: Workspace, run_id: int) -> SyncUndoneView:
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
        before = dict(done)
        sync_history.record(undo, [(pk, "restored", before[pk], records.digest(fresh[pk])) for pk in fresh])
        counts = {"restored": len(done), "conflicts": len(conflicts)}
        sync_history.finish(undo, counts)
        outbox.record(uow, project.id, "beads.sync_undone",
                      {"alias": ws.alias, "sync": undo.id, "undo_of": run.id, "repo": repo.canonical,
                       **counts}, workspace_id=ws.id)
    return SyncUndoneView(undo.id, run.id, len(done), conflicts, list(fresh.values()))


def _undo_each(uow: UnitOfWork,
               project: Project, ws: Workspace, run: SyncRun, changes: list, beads: dict[int, Bead],
               holders: dict[int, Workspace], current: dict[int, dict[str, Any]]
               ) -> tuple[list[tuple[int, str]], list[SyncConflictView]]:
    """Restore each change that nothing touched since; (bead id, its snapshot now) of those done."""
    done: list[tuple[int, str]] = []
    conflicts: list[SyncConflictView] = []
    snaps = sync_history.snapshots(beads[c.bead_id] for c in changes if c.bead_id in beads)
    for change in changes:
        bead = beads.get(change.bead_id)
        if bead is None:
            continue
        holder = holders.get(bead.id)
        if records.digest(current[bead.id]) != change.after:
            conflicts.append(SyncConflictView(bead.ref, f"changed since sync #{run.id}: left as it is"))
            continue
        target = "tombstone" if change.action == "created" else json.loads(change.before)["row"]["status"]
        if holder is not None and holder.id != ws.id and target != bead.status:
            conflicts.append(SyncConflictView(bead.ref,
                                              f"held by {holder.alias}: its status stays {bead.status}"))
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
        notify(uow, project.id, owner.id,
               f"your claim on {bead.ref} is back: {ws.alias} undid the sync that had removed it",
               {"bead": bead.ref, "event": "claim.restored", "by": ws.alias})


def _event_undo(uow: UnitOfWork, project: Project, ws: Workspace, run: SyncRun, bead: Bead,
                old_status: str) -> None:
    Event.insert(**event_row(project, ws, "bead.sync_undone", bead.ref, {"sync": run.id})).execute()
    if bead.status != old_status:
        notify_subscribers(uow, bead, ws,
                           f"{bead.ref} is now {bead.status} ({ws.alias} undid sync #{run.id}): "
                           f"{bead.title[:80]}", bead.status)
