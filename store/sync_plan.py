"""Beads sync, first half: the uploaded file parsed and checked, and the plan of what the sync does.

Nothing here writes: `make_plan` merges base, file and server (store/merge.py) and applies the claim
rule; `deletion_guard` says whether the plan needs `allow_delete`. store/sync.py runs it, store/sync_apply.py
writes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from store import records
from store.beads import normalise_record
from store.errors import InvalidInput, SyncRejected
from store.merge import STATUS_FIELDS, THEIRS, merge_beads, read_records
from store.merge import Conflict as MergeConflict
from store.models import Bead, Workspace
from store.util import json_depth_over

#: Deepest nesting of arrays and objects in one beads record (real ones have 3 or 4).
MAX_RECORD_DEPTH = 32
#: A sync tombstoning more than this many beads, or more than this share of the repo's live beads,
#: or any claimed bead, changes nothing unless `allow_delete` is given.
DEFAULT_MAX_QUIET_DELETES = 20
DEFAULT_MAX_QUIET_SHARE = 0.10
#: Beads updated or tombstoned past which the Activity event marks a sync as a mass change.
DEFAULT_MASS_CHANGE = 20
#: How conflicts name the two sides of the merge.
SIDE_NAMES = {"ours": "file", "theirs": "server"}
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


def parse_base(text: str) -> dict[str, dict[str, Any]]:
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
class Plan:
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


def make_plan(ws: Workspace, beads: list[Bead], holders: dict[int, Workspace], ours: dict[str, Parsed],
          base: dict[str, dict[str, Any]] | None, deletions: bool, pull: bool) -> Plan:
    exported = records.export(beads)
    by_ref = {b.ref: b for b in beads}
    plan = Plan(ws, by_ref, {b.ref: exported[b.id] for b in beads}, {ref: p.raw for ref, p in ours.items()},
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


def _decide(plan: Plan, ref: str, rec: dict[str, Any] | None) -> None:
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


def _deletion(plan: Plan, ref: str, t: dict[str, Any] | None) -> dict[str, Any] | None:
    if t is None or t.get("status") == "tombstone":
        return None
    holder = plan.foreign_holder(ref)
    if holder is not None:
        plan.conflicts.append({"id": ref, "field": "record", "kept": "server", "value": "kept",
                               "lost": "deleted", "reason": f"{ref} is held by {holder.alias}: not deleted"})
        return t
    plan.tombstones.append(ref)
    return None


def _change(plan: Plan, ref: str, rec: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
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


def deletion_guard(plan: Plan, beads: list[Bead]) -> dict[str, Any] | None:
    """Why this sync needs `allow_delete` (None: it does not)."""
    gone = plan.tombstones
    live = sum(1 for b in beads if b.status != "tombstone")
    claimed = [ref for ref in gone if plan.holder(ref) is not None]
    if len(gone) > DEFAULT_MAX_QUIET_DELETES or len(gone) > DEFAULT_MAX_QUIET_SHARE * live or claimed:
        return {"would_delete": gone, "claimed": claimed, "live": live}
    return None


def is_mass(plan: Plan) -> bool:
    live = sum(1 for b in plan.beads.values() if b.status != "tombstone")
    changed = len(plan.updates) + len(plan.tombstones)
    return changed > DEFAULT_MASS_CHANGE or len(plan.tombstones) > DEFAULT_MAX_QUIET_SHARE * max(live, 1)
