"""Three-way merge of beads records, bead by bead and field by field: the one set of rules that
`wire sync` (on the server, store/sync.py) and the git merge driver (`wire guard merge`, no server)
both follow.

Pure and dependency-free (the standard library and store/util.py), so the CLI imports it without
the Redis and SQL stack. A *record* is one line of a beads file as a dict; a side is a map
{id: record}. For each bead, with `b` the common base, `o` ours and `t` theirs:

- unchanged on one side since the base: the other side's version;
- changed on both: field by field. Different fields changed on each side are both kept; the same
  field changed to different values on both sides is a conflict that the later edit (`updated_at`)
  wins, reported with the value it replaced. The status and the fields that go with it (closed_at,
  close_reason, deleted_*...) are decided together. Labels and dependencies merge item by item
  (an item added or removed on one side is added or removed), comments only grow;
- no base for the bead (first sync, a bead new on both sides): the later record wins whole, and
  comments from both sides are kept;
- on one side only: kept, unless the base had it and the other side deleted it while this side left
  it as it was (a real deletion). Deleted on one side and changed on the other: kept, reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from store.util import parse_ts

Record = dict[str, Any]


class _Missing:
    """A field a record does not have (distinct from null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
#: Fields that change together with the status: one three-way decision for the group.
STATUS_FIELDS = ("status", "closed_at", "close_reason", "started_at", "deleted_at", "deleted_by",
                 "delete_reason", "original_type")
#: The record's own edit time: never a conflict; the later one is kept.
STAMP = "updated_at"
#: Sides, as conflicts name them.
OURS, THEIRS = "ours", "theirs"


def _scalar_key(item: Any) -> Any:
    return item if isinstance(item, str) else json.dumps(item, sort_keys=True)


def _dep_key(item: Any) -> Any:
    if isinstance(item, dict):
        return (str(item.get("depends_on_id")), str(item.get("type") or "blocks"))
    return _scalar_key(item)


def _comment_key(item: Any) -> Any:
    if isinstance(item, dict):
        return (str(item.get("author") or ""), str(item.get("text") or ""))
    return _scalar_key(item)


#: List fields merged item by item (an item added or removed on one side is added or removed).
SET_FIELDS: dict[str, Callable[[Any], Any]] = {"labels": _scalar_key, "dependencies": _dep_key,
                                               "blocked_by": _scalar_key}
#: List fields that only grow: the items of both sides are kept.
UNION_FIELDS: dict[str, Callable[[Any], Any]] = {"comments": _comment_key}


@dataclass(frozen=True)
class Conflict:
    """A bead both sides changed incompatibly: `kept` says whose value stayed, `lost` is the other."""

    id: str
    field: str
    kept: str
    value: Any
    lost: Any
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "field": self.field, "kept": self.kept, "reason": self.reason,
                "value": None if self.value is MISSING else self.value,
                "lost": None if self.lost is MISSING else self.lost}


@dataclass
class Merged:
    """The outcome: the merged record of every bead (None: deleted), in a stable order."""

    records: dict[str, Record | None] = field(default_factory=dict)
    #: ours' order first, then what only theirs has, in theirs' order
    order: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def edited_at(record: Record) -> float:
    """When the record was last edited (`updated_at`, else `created_at`); 0 when unknown."""
    return parse_ts(record.get(STAMP)) or parse_ts(record.get("created_at")) or 0.0


def later_side(ours: Record, theirs: Record, prefer: str = THEIRS) -> str:
    """Which side was edited later; `prefer` on a tie."""
    mine, other = edited_at(ours), edited_at(theirs)
    if mine != other:
        return OURS if mine > other else THEIRS
    return prefer


def merge_beads(base: dict[str, Record] | None, ours: dict[str, Record], theirs: dict[str, Record], *,
                prefer: str = THEIRS, deletions: bool = True, theirs_deletes: bool = True,
                stale_ours: bool = False) -> Merged:
    """Merge two sides against their base (None: there is none, so nothing is deleted).

    `deletions` off: a bead ours lacks is never deleted (it comes back from theirs).
    `theirs_deletes` off: a bead theirs lacks was never there (the server), so ours keeps it.
    `stale_ours`: a record of ours edited earlier than the base's is an old copy (a file put back by
    git), not an edit: it counts as unchanged.
    """
    merged = Merged(order=[*ours, *(ident for ident in theirs if ident not in ours)])
    for ident in merged.order:
        b = base.get(ident) if base is not None else None
        o, t = ours.get(ident), theirs.get(ident)
        if stale_ours and b is not None and o is not None and o != b and edited_at(o) < edited_at(b):
            o = b
        record: Record | None
        if o is not None and t is not None:
            record, conflicts = merge_record(b, o, t, ident=ident, prefer=prefer)
            merged.conflicts += conflicts
        elif o is not None:
            record = _one_side(ident, b, o, THEIRS if theirs_deletes else None, merged.conflicts)
        else:
            record = _one_side(ident, b, t, OURS if deletions else None, merged.conflicts)
        merged.records[ident] = record
    return merged


def _one_side(ident: str, base: Record | None, present: Record | None, deleter: str | None,
              conflicts: list[Conflict]) -> Record | None:
    """A bead one side has and `deleter` (None: a side whose absence means nothing) lacks."""
    if base is None or deleter is None:
        return present  # new on the side that has it: never deleted
    if present == base:
        return None  # the other side deleted it, this one left it alone: a real deletion
    keeper = THEIRS if deleter == OURS else OURS
    conflicts.append(Conflict(ident, "record", keeper, "kept", "deleted",
                              f"deleted on {deleter} side but changed on {keeper} since: kept"))
    return present


def merge_record(base: Record | None, ours: Record, theirs: Record, *, ident: str = "",
                 prefer: str = THEIRS) -> tuple[Record, list[Conflict]]:
    """One bead's three versions merged; the conflicts that the later edit decided."""
    if ours == theirs:
        return ours, []
    if base is not None and ours == base:
        return theirs, []
    if base is not None and theirs == base:
        return ours, []
    later = later_side(ours, theirs, prefer)
    if base is None:
        winner, loser = (ours, theirs) if later == OURS else (theirs, ours)
        record = dict(winner)
        for name, key in UNION_FIELDS.items():  # nothing written on either side is lost
            value = _union(winner.get(name, MISSING), loser.get(name, MISSING), key)
            if value is not MISSING:
                record[name] = value
        return record, []
    return _by_field(ident, base, ours, theirs, later)


def _by_field(ident: str, base: Record, ours: Record, theirs: Record,
              later: str) -> tuple[Record, list[Conflict]]:
    conflicts: list[Conflict] = []
    status_from = _status_side(ident, base, ours, theirs, later, conflicts)
    record: Record = {}
    for name in [*ours, *(k for k in theirs if k not in ours)]:
        if name in STATUS_FIELDS:
            value = status_from.get(name, MISSING)
        elif name == STAMP:
            value = max((ours.get(name, MISSING), theirs.get(name, MISSING)), key=_stamp_order)
        else:
            value = _field(ident, name, base.get(name, MISSING), ours.get(name, MISSING),
                           theirs.get(name, MISSING), later, conflicts)
        if value is not MISSING:
            record[name] = value
    return record, conflicts


def _stamp_order(value: Any) -> tuple[float, str]:
    return (parse_ts(value) or 0.0, value if isinstance(value, str) else "")


def _status_side(ident: str, base: Record, ours: Record, theirs: Record, later: str,
                 conflicts: list[Conflict]) -> Record:
    """Which side's status group the merge takes."""
    b, o, t = (_group(r) for r in (base, ours, theirs))
    if o == t or t == b:
        return ours
    if o == b:
        return theirs
    kept, lost = (ours, theirs) if later == OURS else (theirs, ours)
    before, after = lost.get("status", MISSING), kept.get("status", MISSING)
    conflicts.append(Conflict(ident, "status", later, after, before,
                              "status changed on both sides: the later edit wins"))
    return kept


def _group(record: Record) -> tuple[Any, ...]:
    return tuple(record.get(name, MISSING) for name in STATUS_FIELDS)


def _field(ident: str, name: str, b: Any, o: Any, t: Any, later: str, conflicts: list[Conflict]) -> Any:
    if name in UNION_FIELDS and _lists(o, t):
        return _union(o, t, UNION_FIELDS[name])
    if name in SET_FIELDS and _lists(b, o, t):
        return _set_merge(b, o, t, SET_FIELDS[name])
    if o == t or t == b:
        return o
    if o == b:
        return t
    kept, lost = (o, t) if later == OURS else (t, o)
    conflicts.append(Conflict(ident, name, later, kept, lost,
                              f"{name} changed on both sides: the later edit wins"))
    return kept


def _lists(*values: Any) -> bool:
    return all(v is MISSING or isinstance(v, list) for v in values)


def _union(first: Any, second: Any, key: Callable[[Any], Any]) -> Any:
    if first is MISSING or second is MISSING:
        return second if first is MISSING else first
    seen = {key(item) for item in first}
    return [*first, *(item for item in second if key(item) not in seen)]


def _set_merge(b: Any, o: Any, t: Any, key: Callable[[Any], Any]) -> Any:
    """Items of ours that theirs did not remove, then what theirs added; order kept."""
    base_keys = {key(item) for item in _items(b)}
    their_keys = {key(item) for item in _items(t)}
    out, seen = [], set()
    for item in _items(o):
        k = key(item)
        if k not in seen and (k in their_keys or k not in base_keys):
            out.append(item)
            seen.add(k)
    for item in _items(t):
        k = key(item)
        if k not in seen and k not in base_keys:
            out.append(item)
            seen.add(k)
    if out:
        return out
    return o if o is MISSING or o == [] else (t if t is MISSING or t == [] else [])


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# -- beads files ------------------------------------------------------------------------------

def dump_record(record: Record) -> str:
    """One line of a beads file (compact JSON, no trailing newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def read_records(text: str) -> tuple[dict[str, Record], dict[str, str]]:
    """The records of a beads file by id, and each id's line as written (later lines win).

    Raises:
        ValueError: a line is not a JSON object with a string `id` (the message names the line).
    """
    records: dict[str, Record] = {}
    lines: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: not valid JSON") from exc
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"].strip():
            raise ValueError(f"line {number}: not a beads record (a JSON object with an id)")
        ident = record["id"].strip()
        records.pop(ident, None)  # a later line moves the bead to its place
        records[ident] = record
        lines[ident] = line.rstrip("\r")
    return records, lines


def render(order: Iterable[str], records: dict[str, Record | None],
           *sources: tuple[dict[str, Record], dict[str, str]]) -> str:
    """The file text: each bead's line as one of `sources` (records, lines of a file) wrote it when
    the record is that one, else the record dumped; deleted beads left out."""
    out = []
    for ident in order:
        record = records.get(ident)
        if record is None:
            continue
        line = next((lines[ident] for originals, lines in sources
                     if ident in lines and originals.get(ident) == record), None)
        out.append(line if line is not None else dump_record(record))
    return "".join(line + "\n" for line in out)
