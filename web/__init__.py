"""The web app: `create_app` (web/app.py) builds it.

gunicorn's master imports this package for `web.worker` before gevent patches the standard library in
the worker, after the fork; `store` pulls in redis-py and ssl, which must see the patched modules. So
this module imports nothing of the app until `create_app` is called (in the worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from store.config import Settings


def create_app(settings: Settings | None = None, redis_client: object | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    from web.app import create_app as build  # noqa: PLC0415 - late on purpose: see the module docstring

    return build(settings, redis_client)
