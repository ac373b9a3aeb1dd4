"""The only package that talks to Redis or SQL.

`open_store(settings)` binds the database and builds the Redis side once per process; web,
actors and tests pass the resulting `Store` to the domain functions (`claims.claim_bead`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# Nothing heavy at import: the CLI loads the pure store/merge.py (the rules `wire sync` and the git
# merge driver share) and must not pay for the Redis client to do so.
if TYPE_CHECKING:
    from store.config import Settings
    from store.redis import RedisStore


@dataclass
class Store:
    settings: Settings
    redis: RedisStore


def open_store(settings: Settings, redis_client: object | None = None) -> Store:
    """Bind the database proxy and connect Redis (a fakeredis client may be passed in tests)."""
    from store import db
    from store.keys import Keys
    from store.redis import RedisStore, make_client

    db.init_db(settings)
    client = redis_client if redis_client is not None else make_client(settings.redis_url, settings.redis_cluster)
    return Store(settings=settings, redis=RedisStore(client, Keys(settings.namespace)))  # type: ignore[arg-type]
