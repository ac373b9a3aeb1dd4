"""How actors are declared, and the Store and database connection they work with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from store import Store, db, open_store, unit
from store.config import Settings

#: Holds the actors until `actors.configure` binds them to a real broker: declaring one needs a broker,
#: and this one is private (never Dramatiq's global), so importing an actor module configures nothing.
_UNBOUND = StubBroker()


def actor(**options: Any) -> Callable[[Callable[..., Any]], dramatiq.Actor]:
    """`dramatiq.actor` for our actors: declared now, bound to a broker by `actors.configure`."""

    def declare(fn: Callable[..., Any]) -> dramatiq.Actor:
        return dramatiq.actor(broker=_UNBOUND, **options)(fn)

    return declare


def declared() -> list[dramatiq.Actor]:
    return list(_UNBOUND.actors.values())


class _Bound:
    """The Store of the configured worker. Dramatiq calls an actor with its message's arguments only,
    so the actors reach the Store here; `actors.configure` sets it, nothing reads the environment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings: Settings | None = None
        self.store: Store | None = None


_bound = _Bound()


def get_store() -> Store:
    """The Store the actors work with (opened from the configured settings on first use)."""
    with _bound.lock:
        if _bound.store is None:
            if _bound.settings is None:
                raise RuntimeError("actors are not configured: call actors.configure(settings) first")
            _bound.store = open_store(_bound.settings)
        return _bound.store


def use_store(store: Store) -> None:
    """Make the actors use an existing Store (bench/profile_paths.py; `actors.configure` takes one too)."""
    with _bound.lock:
        _bound.store = store


class StoreMiddleware(dramatiq.Middleware):
    """Binds the actors' Store; opens the thread's DB connection and a fresh unit-of-work scope around
    each message, like the web app does per request."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        with _bound.lock:
            _bound.settings, _bound.store = settings, store

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        get_store()
        unit.open_scope()
        db.connect()

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *,
                              result: object = None, exception: BaseException | None = None) -> None:
        unit.open_scope()  # what the actor did not publish waits for the redelivery sweep
        db.close()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
