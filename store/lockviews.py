"""File reservations as the API shows them (web/schemas/locks.py dumps them); store/reservations.py
makes them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReservationView:
    pattern: str
    alias: str
    reason: str
    bead: str | None
    auto: bool
    expires_at: str | None  # never None: util.iso of a time
    seconds_left: int
    #: the caller's own
    mine: bool


@dataclass
class ConflictView:
    """One of the caller's paths (`path`) overlapping another's live reservation (`pattern`)."""

    path: str
    pattern: str
    alias: str
    reason: str
    bead: str | None
    auto: bool
    seconds_left: int


@dataclass
class HolderView(ConflictView):
    mine: bool


@dataclass
class ReservedView:
    granted: list[ReservationView]
    conflicts: list[ConflictView]


@dataclass
class UnreservedView:
    released: list[ReservationView]
    not_held: list[str]


@dataclass
class HoldersView:
    holders: list[HolderView]
