"""The Redis side of the store: one `RedisStore` per client, composed of one class per domain.

| module            | what                                                                   |
|-------------------|------------------------------------------------------------------------|
| `client.py`       | `make_client`, and `unavailable()`: the one Redis error -> `Unavailable` |
| `scripts.py`      | one typed wrapper per Lua script of store/lua, loaded once per client    |
| `base.py`         | what the domains share: several scripts in one round trip, stream waits  |
| `presence.py`     | the heartbeat (admit, presence, rebuild, banner), online, revocation     |
| `mailbox.py`      | delivering outbox rows, mailbox reads and acks, chat waits               |
| `events.py`       | the project event stream and its long-lived feeds                        |
| `reservations.py` | file reservations                                                      |
| `sessions.py`     | dashboard login links and sessions                                     |
| `ratelimit.py`    | rate buckets                                                           |
| `slots.py`        | waiter slots                                                           |
| `stats.py`        | what `GET /metrics` counts                                             |

Scripts are always called with every key passed in KEYS (never built inside Lua), so they stay
cluster-safe. On a Redis Cluster (`BEADWIRE_REDIS_CLUSTER=1`) every multi-key call must stay within one
project's hash tag, and a pipeline that carries a script must come from `RedisBase._script_pipeline`
(redis-py's cluster pipelines refuse EVALSHA); tests/test_scaleout.py and tests/test_lua_cluster.py
run everything on a real cluster.
"""

from __future__ import annotations

from store.redis.base import DEFAULT_STREAM_MAXLEN, RedisBase
from store.redis.client import DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT, make_client, unavailable
from store.redis.events import EventFeed, Events
from store.redis.mailbox import DEFAULT_DEDUPE_TTL, Mailbox
from store.redis.presence import (
    DEFAULT_BANNER_ITEMS,
    DEFAULT_REBUILD_RETRY,
    DEFAULT_TOUCH_TTL,
    Beat,
    Presence,
)
from store.redis.ratelimit import NO_RATE, Rate, RateLimits
from store.redis.reservations import DEFAULT_RESERVATION_GRACE, AutoReserved, Reservations, Reserved
from store.redis.sessions import Sessions
from store.redis.slots import Slots
from store.redis.stats import Stats

__all__ = ["DEFAULT_BANNER_ITEMS", "DEFAULT_DEDUPE_TTL", "DEFAULT_POOL_SIZE", "DEFAULT_POOL_WAIT",
           "DEFAULT_REBUILD_RETRY", "DEFAULT_RESERVATION_GRACE", "DEFAULT_STREAM_MAXLEN", "DEFAULT_TOUCH_TTL",
           "NO_RATE", "AutoReserved", "Beat", "EventFeed", "Rate", "RedisBase", "RedisStore", "Reserved",
           "make_client", "unavailable"]


class RedisStore(Presence, Mailbox, Events, Reservations, Sessions, RateLimits, Slots, Stats):
    """A client, its scripts and the key builders, with every domain's methods (the way redis-py
    composes its client from command mixins): `RedisStore(client, keys)`."""
