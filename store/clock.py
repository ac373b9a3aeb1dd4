"""The server's clock, as an object that can be handed around and replaced.

Wall time (`now`, epoch seconds) stamps rows and computes expiries that are decided in Python, such as a
reservation's lease; monotonic time (`monotonic`) measures intervals, such as a cache entry's age. One
object for both lets a test move time forward (tests/clock.py: `FakeClock.advance`) instead of sleeping.
Expiries Redis keeps itself (a key's TTL) run on Redis's clock and are not covered.
"""

from __future__ import annotations

import time


class Clock:
    """The real clock."""

    def now(self) -> float:
        """Epoch seconds."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back: for intervals."""
        return time.monotonic()
