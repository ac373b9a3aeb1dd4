"""Rate buckets (GCRA, store/lua/gcra.inc.lua): their shapes, and taking a request from them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from store.errors import RateLimited
from store.redis.base import RedisBase


@dataclass(frozen=True)
class Rate:
    """A GCRA bucket's shape: `per_second` requests on average, `burst` at once (0 = unlimited)."""

    per_second: float = 0.0
    burst: int = 1

    def args(self) -> list[str]:
        """ARGV of the Lua bucket: emission interval and tolerance, in seconds (not to be changed)."""
        return self._argv

    @cached_property
    def _argv(self) -> list[str]:
        # worked out once per shape: every heartbeat passes two (a division and two float reprs each)
        if self.per_second <= 0:
            return ["0", "0"]
        interval = 1.0 / self.per_second
        return [repr(interval), repr(interval * max(self.burst, 1))]


#: No limit (tests of other things, and callers that do not limit).
NO_RATE = Rate()


def limited(ms: int, what: str) -> RateLimited:
    """The error of a refused request, `ms` milliseconds before the buckets would take it."""
    seconds = max(1, -(-int(ms) // 1000))
    return RateLimited(f"too many requests for this {what}: retry in {seconds} s", retry_after=seconds)


class RateLimits(RedisBase):
    """Taking requests from buckets (the heartbeat takes a workspace's own in heartbeat.lua)."""

    def take(self, buckets: list[tuple[str, Rate]], now: float, what: str) -> None:
        """Take one request from every bucket (all or none): ratelimit.lua.

        Raises:
            RateLimited: a bucket is empty.
            Unavailable: Redis cannot be reached.
        """
        wait = self.scripts.ratelimit([(key, rate.args()) for key, rate in buckets], now=now).run()
        if wait:
            raise limited(wait, what)
