"""A sync's answers as the API shows them (web/schemas/sync.py dumps them).

A field the answer leaves out when it does not apply holds `ABSENT` (store/beadviews.py): a dry run
has no `records`, an undo's conflict names no `field`, `kept`, `value` or `lost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store.beadviews import ABSENT


@dataclass
class SyncConflictView:
    """A bead both sides changed (store/merge.py), or one an undo left as it is."""

    id: str
    reason: str
    field: Any = ABSENT
    kept: Any = ABSENT
    value: Any = ABSENT
    lost: Any = ABSENT

    @classmethod
    def of(cls, conflict: dict[str, Any]) -> SyncConflictView:
        return cls(**conflict)


@dataclass
class SyncChangesView:
    created: list[str]
    updated: list[str]
    tombstoned: list[str]
    pulled: list[str]


@dataclass
class SyncResultView:
    sync: int | None
    dry_run: bool
    repo: str
    total: int
    created: int
    updated: int
    tombstoned: int
    unchanged: int
    pulled: int
    conflicts: list[SyncConflictView]
    changes: SyncChangesView
    needs_allow_delete: bool
    mass: bool
    #: the records the file takes (ABSENT in a dry run)
    records: Any = ABSENT


@dataclass
class SyncRecordsView:
    repo: str
    records: list[dict[str, Any]]


@dataclass
class SyncRunView:
    sync: int
    kind: str
    alias: str
    at: str | None  # never None: util.iso of a time
    counts: dict[str, Any]
    undo_of: int | None
    undone_by: int | None


@dataclass
class SyncUndoneView:
    sync: int
    undo_of: int
    restored: int
    conflicts: list[SyncConflictView]
    records: list[dict[str, Any]]
