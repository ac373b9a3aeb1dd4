"""Dramatiq actors. The broker is configured here, before the families are imported, so that
`dramatiq actors` (the Procfile's worker) finds every actor bound to it.

Actors receive ids, load state through `store`, and are idempotent.
"""

from __future__ import annotations

import dramatiq

from store import logs
from store.config import Settings

settings = Settings.from_env()
logs.configure(settings, "worker")


def _make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.broker == "stub":
        from dramatiq.brokers.stub import StubBroker

        return StubBroker()
    from dramatiq.brokers.redis import RedisBroker

    from store.keys import Keys
    from store.redis import make_client

    # Dramatiq wants bytes; on a cluster its hash-tagged namespace keeps every queue key in one slot
    client = make_client(settings.redis_url, settings.redis_cluster, decode=False)
    return RedisBroker(client=client, namespace=Keys(settings.namespace).broker_namespace(settings.redis_cluster))


broker = _make_broker(settings)
from actors.middleware import StoreMiddleware

broker.add_middleware(StoreMiddleware())
dramatiq.set_broker(broker)

from actors import escalations, mailbox, outbox, sweeps  # noqa: F401  (registers the actors on the broker above)
