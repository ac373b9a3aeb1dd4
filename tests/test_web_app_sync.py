"""web/app.py `App.ensure_sync`: plain views and hooks are called as they are; a coroutine still goes
through Flask's own wrapping (so an `async def` view keeps working, or fails as Flask makes it fail)."""

from __future__ import annotations

from flask import Flask

from web.app import App


def test_plain_functions_and_methods_are_returned_as_they_are():
    app = App("t")

    def view() -> str:
        return "ok"

    class Hooks:
        def hook(self) -> None:
            return None

    hooks = Hooks()
    assert app.ensure_sync(view) is view
    assert app.ensure_sync(hooks.hook) == hooks.hook


def test_a_coroutine_is_left_to_flask(monkeypatch):
    app = App("t")

    async def view() -> str:
        return "ok"

    seen = []
    monkeypatch.setattr(Flask, "ensure_sync", lambda self, func: seen.append(func) or func)
    app.ensure_sync(view)
    assert seen == [view]
