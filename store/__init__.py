"""The only package that talks to Redis or SQL.

`open_store(settings)` is the one function that builds a `Store`: it binds the database and builds the
Redis side once per process; web, actors and tests pass the resulting `Store` to the domain functions
(`claims.claim_bead`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from store.util import Clock, TokenCache

# Nothing heavy at import: the CLI loads the pure store/merge.py (the rules `wire sync` and the git
# merge driver share) and must not pay for the Redis client to do so.
if TYPE_CHECKING:
    import redis
    from peewee import Database

    from store.config import Settings
    from store.redis import RedisStore


@dataclass
class Store:
    """What the domain functions work with: settings, Redis, the broker, the caches and the clock.

    The database is bound by `open_store` to Peewee's proxy (`store.db.database`): the models name
    it in their `Meta`, so it is the one binding that stays module-level; `database` is the same one.
    """

    settings: Settings
    redis: RedisStore
    database: Database | None = None
    #: The Dramatiq broker the actors are bound to (`actors.configure`); None where nothing enqueues.
    broker: Any = None
    #: What time it is (tests may give a fake one).
    clock: Clock = field(default_factory=Clock)
    #: This process's resolved workspace tokens (store/util.py `TokenCache`).
    tokens: TokenCache = field(default_factory=TokenCache)


def open_store(settings: Settings, redis_client: object | None = None, clock: Clock | None = None) -> Store:
    """Bind the database proxy and connect Redis (a fakeredis client may be passed in tests)."""
    # imported here, not at the top: see the note on the imports above (the CLI's start-up time)
    from store import db  # noqa: PLC0415
    from store.keys import Keys  # noqa: PLC0415
    from store.redis import RedisStore, make_client  # noqa: PLC0415

    database = db.init_db(settings)
    client = redis_client
    if client is None:
        client = make_client(settings.redis_url, settings.redis_cluster)
    # `object` for the callers' sake (tests pass a fakeredis client, a redis.Redis subclass)
    redis_store = RedisStore(cast("redis.Redis", client), Keys(settings.namespace))
    return Store(settings=settings, redis=redis_store, database=database, clock=clock or Clock())
