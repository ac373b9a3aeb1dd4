"""Small pure helpers: clocks, timestamps, tokens, aliases."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.models import Project, Workspace

#: Prefixes make a leaked secret recognisable (and greppable by secret scanners).
PROJECT_KEY_PREFIX = "bw_pk_"
WORKSPACE_TOKEN_PREFIX = "bw_ws_"
#: A single-use key that lets one agent join a project (store/joinkeys.py).
JOIN_KEY_PREFIX = "bw_jk_"


def now() -> float:
    return time.time()


class Clock:
    """The time, as the `Store` sees it (`st.clock.now()`): the real one; a test may pass a fake."""

    def now(self) -> float:
        return time.time()


def iso(ts: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC (`2026-11-21T10:13:36.123456Z`)."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    if dt.year < 1000:  # strftime does not pad such years: keep its spelling
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text as that strftime in half the time (a team status formats 1,000s of these)
    parts = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % parts  # noqa: UP031 - % is faster than an f-string here


def parse_ts(value: object) -> float | None:
    """Parse an RFC 3339 / ISO 8601 timestamp as beads files write them; None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy token: enough at rest, and cheap on every request."""
    return hashlib.sha256(secret.encode()).hexdigest()


def alias_key(alias: str) -> str:
    """What makes two aliases the same one (`Alice` is `alice`): NFKC, then case-folded. A unique
    index on (project, lower(alias)) holds it in SQL (schema 6; stored aliases are ASCII)."""
    return unicodedata.normalize("NFKC", alias).casefold()


#: A lone UTF-16 surrogate (a str holds one only when it came from a `\\udXXX` escape).
_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable_text(value: Any, path: str = "") -> str | None:
    """The path (`labels.0`) of the first string in a JSON value that SQL cannot store, else None.

    PostgreSQL refuses NUL characters in text and neither database takes a lone UTF-16 surrogate
    (which JSON's `\\ud800` escapes can produce); both would otherwise surface as a 500.
    """
    if isinstance(value, str):
        return (path or "value") if _unstorable(value) else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    # a body is mostly strings one level down: those are checked here, without a call and a path each
    for key, item in items:
        if isinstance(key, str) and _unstorable(key):
            return path or "value"
        if isinstance(item, str):
            if _unstorable(item):
                return (f"{path}.{key}" if path else str(key)) or "value"
        elif isinstance(item, (dict, list)):
            found = unstorable_text(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    return None


def _unstorable(text: str) -> bool:
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def json_depth_over(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests arrays and objects deeper than `limit` (iterative: a deep
    value must not exhaust the stack of the very check meant to refuse it)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


#: Seconds a resolved workspace token stays in `TokenCache` (saves one SQL query per request).
TOKEN_TTL = 5.0
#: Entries `TokenCache` keeps at most (it starts over beyond that).
TOKEN_LIMIT = 10_000


class TokenCache:
    """This process's resolved workspace tokens: token -> (workspace, project), each valid `ttl` seconds.

    It belongs to the `Store` (`st.tokens`): a revocation, pause or role change made here drops the
    entry at once; other processes' entries expire after `ttl`.
    """

    def __init__(self, ttl: float = TOKEN_TTL, limit: int = TOKEN_LIMIT) -> None:
        self.ttl, self.limit = ttl, limit
        self._entries: dict[str, tuple[float, Workspace, Project]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> tuple[Workspace, Project] | None:
        cached = self._entries.get(token)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        return None

    def put(self, token: str, ws: Workspace, project: Project) -> None:
        with self._lock:
            if len(self._entries) > self.limit:
                self._entries.clear()
            self._entries[token] = (time.monotonic() + self.ttl, ws, project)

    def forget_token(self, token: str) -> None:
        self._entries.pop(token, None)

    def forget_workspace(self, workspace_id: int) -> None:
        """Drop every cached token of a workspace (its role changed, it was paused or revoked)."""
        with self._lock:
            for token in [t for t, (_, ws, _) in self._entries.items() if ws.id == workspace_id]:
                self._entries.pop(token, None)
