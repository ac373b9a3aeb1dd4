"""Dramatiq actors: they receive ids, load state through `store`, and are idempotent.

Importing this package declares the actors and does nothing else: no broker, no environment. A
process that sends or runs them binds them with `configure(settings)`: the worker's entry point
(`dramatiq actors:from_env`, the Procfile), the clock (`python -m actors.clock`), the web app
(web/app.py, with its own Store) and the tests (through the app, on a stub broker).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from actors import escalations, mailbox, outbox, sweeps
from actors.middleware import StoreMiddleware, declared
from store import Store, logs
from store.config import Settings
from store.keys import Keys
from store.redis import make_client

__all__ = ["configure", "escalations", "from_env", "mailbox", "make_broker", "outbox", "sweeps"]


def make_broker(settings: Settings) -> dramatiq.Broker:
    """The broker `settings.broker` names: a stub (in-process, the tests) or Redis."""
    if settings.broker == "stub":
        return StubBroker()
    # Dramatiq wants bytes; on a cluster its hash-tagged namespace keeps every queue key in one slot
    client = make_client(settings.redis_url, settings.redis_cluster, decode=False)
    namespace = Keys(settings.namespace).broker_namespace(settings.redis_cluster)
    return RedisBroker(client=client, namespace=namespace)


def configure(settings: Settings, store: Store | None = None) -> dramatiq.Broker:
    """Bind every actor to a new broker for `settings`; the actors use `store` (default: one opened from
    `settings` on the first message). It becomes Dramatiq's global broker too: its worker looks there."""
    broker = make_broker(settings)
    broker.add_middleware(StoreMiddleware(settings, store))
    for actor in declared():
        actor.broker = broker
        broker.declare_actor(actor)
    dramatiq.set_broker(broker)
    return broker


def from_env() -> None:
    """The worker's entry point (`dramatiq actors:from_env`): the one place it reads the environment."""
    settings = Settings.from_env()
    logs.configure(settings, "worker")
    configure(settings)
