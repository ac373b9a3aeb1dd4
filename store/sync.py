"""Beads sync: a worktree uploads its `.beads/issues.jsonl`; the repo is the source of truth.

The whole file is validated before anything is written: one bad line rejects the upload with a
message naming the line. New and changed records are upserted, records older than what the
server holds are reported as conflicts, and in a full upload the repo's beads that are absent
from the file are tombstoned.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from store import Store, db, outbox
from store.beads import normalise_record
from store.errors import InvalidInput, SyncRejected
from store.messages import notify_subscribers
from store.models import Bead, Claim, Comment, Dependency, Project, Repo, Workspace
from store.util import iso, json_depth_over, now

#: Deepest nesting of arrays and objects in one beads record (real ones have 3 or 4).
MAX_RECORD_DEPTH = 32
#: Rows per INSERT statement (SQLite's variable limit is 32766; 12 columns a row).
DEFAULT_BATCH = 500


def parse_jsonl(text: str, max_line: int, max_records: int) -> list[dict[str, Any]]:
    """Parse and validate every line; later lines win over earlier ones with the same id.

    Raises:
        SyncRejected: a line is not JSON, has a wrong field, is too long, or there are too many.
    """
    records: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > max_line:
            raise SyncRejected(f"line {number}: longer than {max_line} characters", line=number)
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise SyncRejected(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})",
                               line=number) from None
        except RecursionError:  # nested far too deep for the parser itself
            raise SyncRejected(f"line {number}: nested deeper than {MAX_RECORD_DEPTH} levels", line=number) from None
        if json_depth_over(raw, MAX_RECORD_DEPTH):
            raise SyncRejected(f"line {number}: nested deeper than {MAX_RECORD_DEPTH} levels", line=number)
        try:
            record = normalise_record(raw)
        except InvalidInput as exc:
            raise SyncRejected(f"line {number}: {exc.message}", line=number) from None
        record["digest"] = hashlib.sha256(line.strip().encode()).hexdigest()
        records[record["ref"]] = record
        if len(records) > max_records:
            raise SyncRejected(f"more than {max_records} beads in one upload", line=number)
    return list(records.values())


def sync_beads(st: Store, project: Project, ws: Workspace, text: str, full: bool = True) -> dict[str, Any]:
    """Apply an uploaded beads file to the caller's repo in one transaction.

    Raises:
        SyncRejected: the file is malformed (nothing written).
    """
    records = parse_jsonl(text, st.settings.max_line, st.settings.max_sync_beads)
    counts = Counter(created=0, updated=0, unchanged=0, tombstoned=0)
    conflicts: list[dict[str, str]] = []
    with db.transaction():
        repo = Repo.get_by_id(ws.repo_id)
        existing = {b.ref: b for b in Bead.select(Bead.id, Bead.ref, Bead.updated_ts, Bead.digest, Bead.status)
                    .where(Bead.repo == repo.id)}
        fresh, changed = [], []
        for rec in records:
            old = existing.get(rec["ref"])
            if old is None:
                fresh.append(rec)
            elif old.digest == rec["digest"]:
                counts["unchanged"] += 1
            elif rec["updated_ts"] < old.updated_ts:
                conflicts.append({"id": rec["ref"], "reason": "the server holds a newer version (updated_at)"})
            else:
                changed.append((old, rec))
        _insert_new(project, repo, fresh)
        for old, rec in changed:
            _apply_update(project, old, rec)
            if rec["status"] != old.status:
                notify_subscribers(Bead(id=old.id, project=project.id, ref=old.ref), ws,
                                   f"{old.ref} is now {rec['status']} (synced by {ws.alias}): {rec['title'][:80]}",
                                   rec["status"])
        counts["created"], counts["updated"] = len(fresh), len(changed)
        if full:
            counts["tombstoned"] = _tombstone_missing(repo, existing, {r["ref"] for r in records})
        _learn_prefix(repo, [r["ref"] for r in records])
        summary = {**counts, "conflicts": conflicts, "total": len(records), "repo": repo.canonical}
        outbox.record(project.id, "beads.synced", {"alias": ws.alias, **{k: v for k, v in summary.items()
                                                                          if k != "conflicts"}},
                      workspace_id=ws.id)
    return summary


def _row(project: Project, repo: Repo, rec: dict[str, Any]) -> dict[str, Any]:
    return {"project": project.id, "repo": repo.id, "ref": rec["ref"], "title": rec["title"],
            "description": rec["description"], "status": rec["status"], "priority": rec["priority"],
            "issue_type": rec["issue_type"], "assignee": rec["assignee"], "labels": json.dumps(rec["labels"]),
            "created_ts": rec["created_ts"], "updated_ts": rec["updated_ts"], "defer_ts": rec["defer_ts"],
            "data": json.dumps(rec["extra"]), "digest": rec["digest"]}


def _insert_new(project: Project, repo: Repo, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), DEFAULT_BATCH):
        Bead.insert_many([_row(project, repo, r) for r in records[start:start + DEFAULT_BATCH]]).execute()
    if not records:
        return
    refs = {r["ref"] for r in records}
    pks = {ref: pk for pk, ref in Bead.select(Bead.id, Bead.ref).where(Bead.repo == repo.id).tuples() if ref in refs}
    deps, comments = [], []
    for rec in records:
        deps.extend(_dep_rows(project, pks[rec["ref"]], rec))
        comments.extend(_comment_rows(pks[rec["ref"]], rec["comments"]))
    for start in range(0, len(deps), DEFAULT_BATCH):
        Dependency.insert_many(deps[start:start + DEFAULT_BATCH]).on_conflict_ignore().execute()
    for start in range(0, len(comments), DEFAULT_BATCH):
        Comment.insert_many(comments[start:start + DEFAULT_BATCH]).execute()


def _dep_rows(project: Project, pk: int, rec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for dep in rec["dependencies"]:
        target_repo, _, target_ref = dep["depends_on_id"].rpartition(":")
        extra = {k: v for k, v in dep.items() if k not in ("issue_id", "depends_on_id", "type")}
        rows.append({"bead": pk, "project": project.id, "target_repo": target_repo, "target_ref": target_ref,
                     "type": dep["type"], "data": json.dumps(extra)})
    return rows


def _comment_rows(pk: int, comments: list[dict[str, Any]], known: set[tuple[str, str]] = frozenset()) -> list:
    rows = []
    for c in comments:
        key = (str(c.get("author") or ""), c.get("text") or "")
        if key in known:
            continue
        extra = {k: v for k, v in c.items() if k not in ("id", "author", "text", "created_at")}
        rows.append({"bead": pk, "ext_id": str(c.get("id") if c.get("id") is not None else ""),
                     "author": key[0], "text": key[1], "created_at": str(c.get("created_at") or ""),
                     "data": json.dumps(extra)})
    return rows


def _apply_update(project: Project, old: Bead, rec: dict[str, Any]) -> None:
    row = _row(project, Repo(id=old.repo_id), rec)
    Bead.update(**{k: v for k, v in row.items() if k not in ("project", "repo", "ref")}).where(
        Bead.id == old.id).execute()
    # dependencies follow the file exactly; comments only grow (server-side comments survive a sync)
    Dependency.delete().where(Dependency.bead == old.id).execute()
    deps = _dep_rows(project, old.id, rec)
    if deps:
        Dependency.insert_many(deps).on_conflict_ignore().execute()
    known = {(a, t) for a, t in Comment.select(Comment.author, Comment.text).where(Comment.bead == old.id).tuples()}
    comments = _comment_rows(old.id, rec["comments"], known)
    if comments:
        Comment.insert_many(comments).execute()
    if rec["status"] in ("closed", "tombstone"):
        Claim.delete().where(Claim.bead == old.id).execute()


def _tombstone_missing(repo: Repo, existing: dict[str, Bead], present: set[str]) -> int:
    gone = [b for ref, b in existing.items() if ref not in present and b.status != "tombstone"]
    ts = now()
    for bead in gone:
        full = Bead.get_by_id(bead.id)
        data = json.loads(full.data)
        data.update({"deleted_at": iso(ts), "deleted_by": "sync", "delete_reason": "absent from a full sync",
                     "original_type": full.issue_type, "updated_at": iso(ts)})
        Bead.update(status="tombstone", updated_ts=ts, data=json.dumps(data), digest="").where(
            Bead.id == bead.id).execute()
        Claim.delete().where(Claim.bead == bead.id).execute()
    return len(gone)


def _learn_prefix(repo: Repo, refs: list[str]) -> None:
    """New beads get the prefix most of the repo's ids use (`gt-…`), `bd` when there are none."""
    prefixes = Counter(ref.split("-", 1)[0] for ref in refs if "-" in ref)
    if prefixes:
        prefix = prefixes.most_common(1)[0][0][:40]
        if prefix != repo.prefix:
            Repo.update(prefix=prefix).where(Repo.id == repo.id).execute()
