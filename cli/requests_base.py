"""What the per-area request helpers (cli/requests_*.py) use of the `Client` they are mixed into."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from cli.errors import ServerUnreachable, WireError
    from cli.local import Workspace

    Offline = str | Callable[[str, ServerUnreachable], WireError] | None


class Requests:
    """The `Client` methods the helpers call (defined in cli/client.py)."""

    if TYPE_CHECKING:
        write_through: bool

        @property
        def workspace(self) -> Workspace | None: ...

        @property
        def root(self) -> Path: ...

        @property
        def url(self) -> str: ...

        def call(self, name: str, /, *, body: dict[str, Any] | None = None, token: str | None = None,
                 auth: bool = True, timeout: float | None = None, offline: Offline = None,
                 headers: dict[str, str] | None = None, **values: Any) -> Any: ...

        def call_exchange(self, name: str, /, *, token: str | None = None, auth: bool = True,
                          headers: dict[str, str] | None = None, **values: Any
                          ) -> tuple[int, Any, Mapping[str, str]]: ...

        def request(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                    auth: bool = True, token: str | None = None, timeout: float | None = None,
                    offline: Offline = None) -> Any: ...

        def held(self, ref: str, answer: Any, held: bool, ts: float | None = None) -> Any: ...

        def through(self, answer: Any, ref: str | None, records: Any = None) -> Any: ...
