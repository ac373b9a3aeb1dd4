"""Per-message database connections and the worker's Store."""

from __future__ import annotations

import threading

import dramatiq

from store import Store, db, open_store

_store: Store | None = None
_lock = threading.Lock()


def use_store(store: Store) -> None:
    """Make actors use an existing Store (tests share the app's)."""
    global _store
    _store = store


def get_store() -> Store:
    """The worker's Store, opened from the environment on first use."""
    global _store
    with _lock:
        if _store is None:
            from actors import settings

            _store = open_store(settings)
    return _store


class StoreMiddleware(dramatiq.Middleware):
    """Opens the thread's DB connection around each message, like the web app does per request."""

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        get_store()
        db.connect()

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message, *,
                              result: object = None, exception: BaseException | None = None) -> None:
        db.close()

    after_skip_message = after_process_message
