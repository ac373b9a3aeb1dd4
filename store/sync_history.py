"""The history of syncs: each run that changed the server, and each bead's state before it.

A `SyncRun` row per sync (and per undo), a `SyncChange` row per bead it created, updated or
tombstoned, holding a snapshot of the row, its dependencies and its claim from just before. That is
what `wire sync --undo ID` puts back (store/sync.py `undo_sync`). Kept `sync_history_days` (30)
days, purged by the retention sweep.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from store import db
from store.errors import SyncNotFound
from store.models import Bead, Claim, Dependency, Project, Repo, SyncChange, SyncRun, Workspace
from store.syncviews import SyncRunView
from store.util import iso, now

#: Columns of a bead that a snapshot keeps (comments only ever grow: they are not rolled back).
ROW_FIELDS = ("title", "description", "status", "priority", "issue_type", "assignee", "labels", "created_ts",
              "updated_ts", "defer_ts", "data", "digest", "raw")
#: Runs `history` lists by default, and at most.
DEFAULT_HISTORY = 20
MAX_HISTORY = 500
#: Rows deleted per statement when purging.
DEFAULT_PURGE_BATCH = 2_000


def start(project: Project, repo: Repo, ws: Workspace, kind: str = "sync",
          undo_of: int | None = None) -> SyncRun:
    """A new run (inside the sync's transaction); its counts are filled in by `finish`."""
    return SyncRun.create(project=project.id, repo=repo.id, workspace_id=ws.id, alias=ws.alias, kind=kind,
                          undo_of=undo_of, created_ts=now())


def finish(run: SyncRun, counts: dict[str, int]) -> None:
    SyncRun.update(counts=json.dumps(counts)).where(SyncRun.id == run.id).execute()


def snapshots(beads: Iterable[Bead]) -> dict[int, str]:
    """Each bead's state as JSON: its row, dependencies and claim (two queries for them all)."""
    beads = list(beads)
    pks = [b.id for b in beads]
    deps: dict[int, list[list[Any]]] = {}
    claims: dict[int, dict[str, Any]] = {}
    for start_at in range(0, len(pks), 500):
        chunk = pks[start_at:start_at + 500]
        for d in Dependency.select().where(Dependency.bead.in_(chunk)).order_by(Dependency.id):
            deps.setdefault(d.bead_id, []).append([d.target_repo, d.target_ref, d.type, d.data])
        for c in Claim.select().where(Claim.bead.in_(chunk)):
            claims[c.bead_id] = {"workspace": c.workspace_id, "claimed_ts": c.claimed_ts, "reason": c.reason}
    return {b.id: json.dumps({"row": {name: getattr(b, name) for name in ROW_FIELDS},
                              "deps": deps.get(b.id, []), "claim": claims.get(b.id)}) for b in beads}


def record(run: SyncRun, changes: list[tuple[int, str, str, str]]) -> None:
    """(bead id, action, snapshot before, digest after) of each bead the run changed."""
    rows = [{"run": run.id, "bead": pk, "action": action, "before": before, "after": after}
            for pk, action, before, after in changes]
    for start_at in range(0, len(rows), 500):
        SyncChange.insert_many(rows[start_at:start_at + 500]).execute()


def restore(bead: Bead, before: str) -> dict[str, Any] | None:
    """Put the row and dependencies of a snapshot back; returns the snapshot's claim (or None)."""
    state = json.loads(before)
    Bead.update(**state["row"]).where(Bead.id == bead.id).execute()
    Dependency.delete().where(Dependency.bead == bead.id).execute()
    rows = [{"bead": bead.id, "project": bead.project_id, "target_repo": repo, "target_ref": ref,
             "type": kind, "data": data} for repo, ref, kind, data in state["deps"]]
    if rows:
        Dependency.insert_many(rows).on_conflict_ignore().execute()
    return state.get("claim")


def get_run(project: Project, run_id: int) -> SyncRun:
    """Raises: SyncNotFound: no such sync in the project."""
    run = SyncRun.get_or_none(SyncRun.id == run_id, SyncRun.project == project.id)
    if run is None:
        raise SyncNotFound(f"no sync #{run_id} in this project (the history keeps BEADWIRE_SYNC_HISTORY_DAYS "
                           "days)")
    return run


def changes_of(run: SyncRun) -> list[SyncChange]:
    return list(SyncChange.select().where(SyncChange.run == run.id).order_by(SyncChange.id))


def history(project: Project, repo_id: int, limit: int = DEFAULT_HISTORY) -> list[SyncRunView]:
    """The repo's recent syncs and undos, newest first."""
    runs = (SyncRun.select().where(SyncRun.project == project.id, SyncRun.repo == repo_id)
            .order_by(SyncRun.id.desc()).limit(min(limit, MAX_HISTORY)))
    return [run_view(run) for run in runs]


def run_view(run: SyncRun) -> SyncRunView:
    return SyncRunView(run.id, run.kind, run.alias, iso(run.created_ts), json.loads(run.counts), run.undo_of,
                       run.undone_by)


def purge(cutoff: float) -> int:
    """Delete runs older than `cutoff` with their changes; returns the runs deleted."""
    total = 0
    while True:
        batch = [pk for (pk,) in SyncRun.select(SyncRun.id).where(SyncRun.created_ts < cutoff)
                 .limit(DEFAULT_PURGE_BATCH).tuples()]
        if not batch:
            return total
        with db.transaction():
            SyncChange.delete().where(SyncChange.run.in_(batch)).execute()
            total += SyncRun.delete().where(SyncRun.id.in_(batch)).execute()
