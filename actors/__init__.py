"""Dramatiq actors. The broker is configured here, before the families are imported, so that
`dramatiq actors` (the Procfile's worker) finds every actor bound to it.

Actors receive ids, load state through `store`, and are idempotent.
"""

from __future__ import annotations

import dramatiq

from store.config import Settings

settings = Settings.from_env()


def _make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.broker == "stub":
        from dramatiq.brokers.stub import StubBroker

        return StubBroker()
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=settings.redis_url, namespace=f"{settings.namespace}:dramatiq")


broker = _make_broker(settings)
from actors.middleware import StoreMiddleware

broker.add_middleware(StoreMiddleware())
dramatiq.set_broker(broker)

from actors import escalations, mailbox, outbox, sweeps  # noqa: F401  (registers the actors on the broker above)
