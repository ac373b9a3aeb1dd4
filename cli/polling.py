"""Long waits made of long-poll slices (`wire chat`, `wire watch`, `wire wait-ready`, `wire mcp`).

A slice asks the server to hold its answer; the wait survives a server restart and backs off when the
server says there are too many waiters.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from cli.errors import ServerUnreachable, WireError

SLICE_SECONDS = 25
#: Seconds between retries while the server is unreachable during a long wait (e.g. restarting).
RETRY_PAUSE = 2.0
#: Shortest time between two empty long-poll slices, should a server answer them at once.
MIN_SLICE_INTERVAL = 0.5
#: Longest pause of a long wait the server refused with 429 (too many waiters): it backs off from the
#: answer's `Retry-After`, doubling while refused, with jitter so refused waiters do not return together.
MAX_BACKOFF = 120.0
#: API error codes that mean "too many of you right now": a long wait pauses and goes on.
BACKOFF_CODES = frozenset({"too_many_waiters", "rate_limited"})


def backoff(retry_after: Any, refused: int) -> float:
    """Seconds to pause after the `refused`-th 429 in a row: `Retry-After` (else 5 s), doubled per
    refusal, at most `MAX_BACKOFF`, between half and all of it at random."""
    try:
        base = max(1.0, float(retry_after))
    except (TypeError, ValueError):
        base = 5.0
    ceiling = min(MAX_BACKOFF, base * 2 ** min(refused - 1, 10))
    return random.uniform(ceiling / 2, ceiling)


def long_poll(call: Callable[[int], Any], wait: float | None, *, reached: bool = True) -> Any:
    """Call `call(slice_seconds)` until it answers something other than None, or `wait` ends.

    Each slice asks the server to hold the answer at most `SLICE_SECONDS` (less near the end);
    `wait=None` waits forever. While the server is unreachable (restarting, 502-504) the wait goes
    on with short pauses, so it survives a restart; with `reached=False` (nothing has answered yet
    in this command) the first such failure is raised instead, since the server is likely not up.
    A 429 (too many waiters, or calls) pauses the wait as the server asks (`backoff`) and goes on.
    Returns the first answer that is not None, or None when the wait ended.

    Raises:
        ServerUnreachable: the very first call failed and `reached` is False.
        WireError: any error answer other than unreachable and 429.
    """
    deadline = math.inf if wait is None else time.monotonic() + wait
    refused = 0
    while (remaining := deadline - time.monotonic()) > 0:
        started = time.monotonic()
        try:
            answer = call(max(1, math.ceil(min(SLICE_SECONDS, remaining))))
        except ServerUnreachable:
            if not reached:
                raise
            pause = RETRY_PAUSE
        except WireError as exc:
            if exc.code not in BACKOFF_CODES:
                raise
            reached, refused = True, refused + 1
            pause = backoff(exc.details.get("retry_after"), refused)
        else:
            reached, refused = True, 0
            if answer is not None:
                return answer
            # an empty slice should have lasted the slice; never spin on a server that answers at once
            pause = MIN_SLICE_INTERVAL - (time.monotonic() - started)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    return None

