"""A clock the test moves: TTL tests advance it instead of sleeping real seconds."""

from __future__ import annotations

import time

from store.clock import Clock


class FakeClock(Clock):
    """Stands still until `advance` (or a set `t`); callable, so it replaces a module's `now` function."""

    def __init__(self, t: float | None = None) -> None:
        self.t = time.time() if t is None else t  # wall time, epoch seconds
        self.mono = 0.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.mono += seconds

    def __call__(self) -> float:
        return self.t
