"""A bead row as the line of a beads file: the record `wire sync` and write-through put in
`.beads/issues.jsonl`.

A synced bead keeps the record it came with (`Bead.raw`). Writing it back starts from that record:
a field whose value still means the same keeps its spelling there (`"priority": "P1"`, an integer
comment id, a field that was absent stays absent), a changed one takes the current value, and the
fields the server changed or added (`closed_at`, ...) come from `Bead.data`. So a bead that nobody
changed comes back exactly as it came (same keys, values and timestamp strings), and a changed one
differs only where it changed. Beads made on the server get the beads format's usual fields.
Server-only facts (the repo, the claim) are never part of a record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from store.beads import normalise_record
from store.models import Bead, Comment, Dependency

#: Column fields and how they read when a record lacks them.
DEFAULTS = {k: v for k, v in normalise_record({"id": "x"}).items()
            if k in ("title", "description", "status", "priority", "issue_type", "assignee", "labels")}
#: Written for a bead made on the server even at their default value (the beads tool always does).
ALWAYS = ("title", "status", "priority", "issue_type")
#: Key order of a record made on the server (then its other fields, then these two).
HEAD_KEYS = ("id", "title", "description", "status", "priority", "issue_type", "assignee", "labels")
TAIL_KEYS = ("dependencies", "comments")


def export(beads: Iterable[Bead]) -> dict[int, dict[str, Any]]:
    """The beads-file record of each bead, by bead id, in three queries whatever their number."""
    beads = list(beads)
    if not beads:
        return {}
    pks = [b.id for b in beads]
    deps: dict[int, list[Dependency]] = {}
    comments: dict[int, list[Comment]] = {}
    for start in range(0, len(pks), 500):  # bounded IN lists (SQLite's variable limit)
        chunk = pks[start:start + 500]
        for dep in Dependency.select().where(Dependency.bead.in_(chunk)).order_by(Dependency.id):
            deps.setdefault(dep.bead_id, []).append(dep)
        for c in Comment.select().where(Comment.bead.in_(chunk)).order_by(Comment.id):
            comments.setdefault(c.bead_id, []).append(c)
    return {b.id: record_of(b, deps.get(b.id, []), comments.get(b.id, [])) for b in beads}


def record_of(bead: Bead, deps: list[Dependency], comments: list[Comment]) -> dict[str, Any]:
    """One bead's record (see the module docstring)."""
    raw = json.loads(bead.raw) if bead.raw else {}
    norm = normalise_record(raw) if raw else None
    same_id = raw and str(raw.get("id", "")).strip() == bead.ref
    values: dict[str, Any] = {"id": raw["id"] if same_id else bead.ref}
    current = {"title": bead.title, "description": bead.description, "status": bead.status,
               "priority": bead.priority, "issue_type": bead.issue_type, "assignee": bead.assignee,
               "labels": json.loads(bead.labels)}
    for name, value in current.items():
        if norm is not None and name in raw and norm[name] == value:
            values[name] = raw[name]  # same meaning: the spelling it came with
        elif name in raw or value != DEFAULTS[name] or (not raw and name in ALWAYS):
            values[name] = value
    data = json.loads(bead.data)
    values.update(data)
    _put_dependencies(values, bead, raw, norm, deps, data)
    _put_comments(values, bead, raw, comments)
    order = [k for k in raw if k in values]
    order += [k for k in HEAD_KEYS if k in values and k not in raw]
    order += [k for k in values if k not in order and k not in TAIL_KEYS]
    order += [k for k in TAIL_KEYS if k in values and k not in order]
    return {k: values[k] for k in order}


def _written(dep: Dependency) -> str:
    return f"{dep.target_repo}:{dep.target_ref}" if dep.target_repo else dep.target_ref


def _put_dependencies(values: dict[str, Any], bead: Bead, raw: dict[str, Any], norm: dict[str, Any] | None,
                      deps: list[Dependency], data: dict[str, Any]) -> None:
    current = [(_written(d), d.type) for d in deps]
    if norm is not None and set(current) == {(d["depends_on_id"], d["type"]) for d in norm["dependencies"]}:
        if "dependencies" in raw:
            values["dependencies"] = raw["dependencies"]
        return  # else they all come from `blocked_by`, which `data` keeps as written
    blocked = data.get("blocked_by")
    covered = {(t, "blocks") for t in blocked if isinstance(t, str)} if isinstance(blocked, list) else set()
    as_written: dict[tuple[str, str], Any] = {}
    for dep in raw.get("dependencies") or [] if isinstance(raw.get("dependencies"), list) else []:
        if isinstance(dep, dict):
            as_written.setdefault((str(dep.get("depends_on_id")), str(dep.get("type") or "blocks")), dep)
    out = []
    for dep, key in zip(deps, current, strict=True):
        if key in as_written:
            out.append(as_written[key])
        elif key not in covered:
            out.append({"issue_id": bead.ref, "depends_on_id": key[0], "type": dep.type,
                        **json.loads(dep.data)})
    if out or "dependencies" in raw:
        values["dependencies"] = out


def _put_comments(values: dict[str, Any], bead: Bead, raw: dict[str, Any], comments: list[Comment]) -> None:
    given: list[Any] = raw["comments"] if isinstance(raw.get("comments"), list) else []
    pool: dict[tuple[str, str], list[Any]] = {}
    for c in given:
        if isinstance(c, dict):
            pool.setdefault((str(c.get("author") or ""), c.get("text") or ""), []).append(c)
    out, all_given = [], True
    for c in comments:
        same = pool.get((c.author, c.text))
        if same:
            out.append(same.pop(0))
        else:
            all_given = False
            out.append(_comment(bead, c))
    if "comments" in raw and all_given and len(out) == len(given):
        values["comments"] = raw["comments"]
    elif out or "comments" in raw:
        values["comments"] = out


def _comment(bead: Bead, comment: Comment) -> dict[str, Any]:
    ident: Any = comment.ext_id
    if isinstance(ident, str) and ident.isdigit():
        ident = int(ident)
    return {"id": ident or comment.id, "issue_id": bead.ref, "author": comment.author, "text": comment.text,
            "created_at": comment.created_at, **json.loads(comment.data)}


def digest(record: dict[str, Any]) -> str:
    """A hash of a record's content (key order aside)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
