"""URL rules whose builders are compiled once per process, however many apps are made.

Werkzeug compiles two URL-building functions for every rule (an `ast` tree passed to `compile()`):
~70% of `create_app`'s time for our ~150 routes. A server builds one app per process and never
notices; the test suite builds one app per test (each with its own database and Redis) and paid
~0.1 s of CPU each time. The function werkzeug generates depends only on what the cache key
holds, and reaches the rule's converters through the rule it is bound to, so identical rules of
two apps can share it: each rule still gets its own bound method, its own parts and converters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from werkzeug.routing import Rule as _WerkzeugRule


class Rule(_WerkzeugRule):
    """A werkzeug `Rule` that reuses the builder an identical rule compiled earlier in this process."""

    _builders: ClassVar[dict[tuple[Any, ...], Callable[..., tuple[str, str]]]] = {}

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        if self.defaults:  # a default is folded into the code through its converter: no sharing
            return super()._compile_builder(append_unknown)
        key = (self.rule, tuple(self._trace), append_unknown)
        builder = self._builders.get(key)
        if builder is None:
            builder = self._builders[key] = super()._compile_builder(append_unknown)
        return builder
