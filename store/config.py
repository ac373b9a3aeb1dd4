"""The one settings object, built from the environment once.

Web, actors, CLI `serve` and tests receive a `Settings`; nothing else reads `os.environ`.
Variables carry the `BEADWIRE_` prefix, except the platform-standard `DATABASE_URL`,
`REDIS_URL`, `PORT` and `LOG_FORMAT`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from platformdirs import user_data_dir

#: Redis used when `REDIS_URL` is unset and nothing embedded was started.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: Seconds a workspace stays "online" after its last authenticated call.
DEFAULT_PRESENCE_TTL = 300
#: Seconds offline after which a holder's claims count as stale (the project may override).
DEFAULT_STALE_CLAIM_SECONDS = 2 * 3600
#: Largest request body the API accepts (a full beads upload is the biggest thing we take).
DEFAULT_MAX_BODY = 16 * 1024 * 1024
#: Longest JSONL line a sync accepts.
DEFAULT_MAX_LINE = 1024 * 1024
#: Most beads one sync may carry.
DEFAULT_MAX_SYNC_BEADS = 50_000
#: Days of history (audit events, delivered outbox rows, read messages) kept.
DEFAULT_RETENTION_DAYS = 90
#: Days a sync's history (what it changed, for `wire sync --undo`) is kept.
DEFAULT_SYNC_HISTORY_DAYS = 30
#: Audit rows: kept a year by default.
DEFAULT_AUDIT_DAYS = 365
#: Seconds an unread mailbox entry waits before it is shown again, once.
DEFAULT_REMIND_AFTER = 3600
#: Requests per second (and burst) one workspace token may make: far above any agent's honest pace
#: (the benchmarks run ~60/s per agent), far below a runaway loop. 0 turns a limit off.
DEFAULT_RATE_TOKEN, DEFAULT_RATE_TOKEN_BURST = 500, 1000
#: Requests per second (and burst) of a whole project, all its tokens and its key together.
DEFAULT_RATE_PROJECT, DEFAULT_RATE_PROJECT_BURST = 5000, 10000
#: Requests per second (and burst) per client address on routes without a token (init, openapi).
DEFAULT_RATE_IP, DEFAULT_RATE_IP_BURST = 100, 1000
#: Deepest JSON nesting a request body may have (arrays and objects), checked before validation.
DEFAULT_MAX_DEPTH = 32
#: Keys namespace prefix, so several deployments can share one Redis.
DEFAULT_NAMESPACE = "bw"
#: Waiters (a `watch`, a chat wait, a `/v1/ws` socket held open) one credential may hold at once: an
#: agent holds one or two, a human's dashboard tabs one each.
DEFAULT_WAITERS_TOKEN = 16
#: Waiters one project may hold at once, all its credentials together.
DEFAULT_WAITERS_PROJECT = 1000
#: Seconds a client has to send a request's line and headers (and an idle keep-alive connection
#: stays open): past it the connection is closed, so a slow client holds nothing.
DEFAULT_HEADER_TIMEOUT = 10
#: Seconds a client has to send a request's whole body (408 after that).
DEFAULT_BODY_TIMEOUT = 30


class ConfigError(ValueError):
    """Raised when an environment variable cannot be parsed; names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("1", "0", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be 1/0, true/false or yes/no, got {raw!r}")
    return raw in ("1", "true", "yes")


def _log_format(env: Mapping[str, str]) -> str:
    # the platform-style LOG_FORMAT wins over BEADWIRE_LOG_FORMAT (both accepted)
    raw = (env.get("LOG_FORMAT") or env.get("BEADWIRE_LOG_FORMAT") or "text").strip().lower()
    if raw not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be 'text' or 'json', got {raw!r}")
    return raw


def default_data_dir() -> str:
    """The per-user data directory `wire serve` uses when `--data-dir` is not given."""
    return user_data_dir("beadwire", appauthor=False)


@dataclass(frozen=True)
class Settings:
    """Everything a beadwire process needs to know about its environment."""

    database_url: str = ""
    redis_url: str = DEFAULT_REDIS_URL
    namespace: str = DEFAULT_NAMESPACE
    data_dir: str = field(default_factory=default_data_dir)
    #: "redis" for real deployments; "stub" runs Dramatiq in-process (tests only).
    broker: str = "redis"
    presence_ttl: int = DEFAULT_PRESENCE_TTL
    stale_claim_seconds: int = DEFAULT_STALE_CLAIM_SECONDS
    max_body: int = DEFAULT_MAX_BODY
    max_line: int = DEFAULT_MAX_LINE
    max_sync_beads: int = DEFAULT_MAX_SYNC_BEADS
    #: SQLite durability: GROUP (group commit: NORMAL plus one shared fsync of the WAL before any
    #: commit returns, store/sqlite_writer.py) or FULL (an fsync inside every commit) are both durable when
    #: acknowledged; NORMAL and OFF trade that away and exist for benchmarks.
    sqlite_synchronous: str = "GROUP"
    log_level: str = "WARNING"
    #: Publish committed outbox rows from the request itself (fast path); False leaves every
    #: delivery to the Dramatiq worker (keeps Redis writes off the web tier).
    publish_inline: bool = True
    #: PostgreSQL: run the hot paths' named statements as server-side prepared statements (planned once
    #: per connection). Off for a pooler that hands a transaction any server connection (pgbouncer in
    #: transaction mode before 1.21), where a statement prepared on one is unknown on the next.
    pg_prepare: bool = True
    retention_days: int = DEFAULT_RETENTION_DAYS
    sync_history_days: int = DEFAULT_SYNC_HISTORY_DAYS
    #: Days audit rows are kept (store/audit.py); a year unless configured.
    audit_days: int = DEFAULT_AUDIT_DAYS
    remind_after: int = DEFAULT_REMIND_AFTER
    #: Rate limits (requests per second, burst; 0 = off): per workspace token, per project, per
    #: client address on unauthenticated routes.
    rate_token: int = DEFAULT_RATE_TOKEN
    rate_token_burst: int = DEFAULT_RATE_TOKEN_BURST
    rate_project: int = DEFAULT_RATE_PROJECT
    rate_project_burst: int = DEFAULT_RATE_PROJECT_BURST
    rate_ip: int = DEFAULT_RATE_IP
    rate_ip_burst: int = DEFAULT_RATE_IP_BURST
    max_depth: int = DEFAULT_MAX_DEPTH
    #: `REDIS_URL` names one node of a Redis Cluster (BEADWIRE_REDIS_CLUSTER=1): clients discover the rest.
    redis_cluster: bool = False
    #: "text" (human-readable lines) or "json" (one JSON object per line; `LOG_FORMAT`).
    log_format: str = "text"
    #: When set, `GET /metrics` wants `Authorization: Bearer <this>`; empty leaves it open (aggregates only).
    metrics_token: str = ""
    #: The escalation webhook may post to loopback, private and shared addresses (a chat bridge on the
    #: LAN). Off: public addresses only (store/egress.py).
    webhook_allow_private: bool = False
    #: Caps on waiters held at once, per credential and per project (0 = no cap): store/waiters.py.
    waiters_token: int = DEFAULT_WAITERS_TOKEN
    waiters_project: int = DEFAULT_WAITERS_PROJECT
    #: Deadlines for a request's headers and body, in seconds (web/worker.py).
    header_timeout: int = DEFAULT_HEADER_TIMEOUT
    body_timeout: int = DEFAULT_BODY_TIMEOUT
    #: The instance's admin token: creating a project on a server bound beyond loopback needs it
    #: (header `X-Wire-Admin-Token`) unless `open_signup`. Empty: nobody can create one there.
    admin_token: str = ""
    #: Whether anyone may create a project: None decides by the bind (open on loopback only),
    #: True opens sign-up everywhere, False wants the admin token on loopback too.
    open_signup: bool | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default `os.environ`), validating every value.

        Raises:
            ConfigError: a variable is malformed; the message names it.
        """
        env = os.environ if env is None else env
        data_dir = env.get("BEADWIRE_DATA_DIR") or default_data_dir()
        database_url = env.get("DATABASE_URL") or "sqlite:///" + os.path.join(data_dir, "beadwire.db")
        if not database_url.startswith(("sqlite", "postgres")):
            raise ConfigError(f"DATABASE_URL must be sqlite:/// or postgresql://, got {database_url!r}")
        broker = env.get("BEADWIRE_BROKER", "redis")
        if broker not in ("redis", "stub"):
            raise ConfigError(f"BEADWIRE_BROKER must be 'redis' or 'stub', got {broker!r}")
        if _bool(env, "BEADWIRE_REDIS_CLUSTER", False) and not env.get("REDIS_URL"):
            raise ConfigError("BEADWIRE_REDIS_CLUSTER=1 needs REDIS_URL naming a node of the cluster")
        sync = env.get("BEADWIRE_SQLITE_SYNCHRONOUS", "GROUP").upper()
        if sync not in ("OFF", "NORMAL", "GROUP", "FULL", "EXTRA"):
            raise ConfigError("BEADWIRE_SQLITE_SYNCHRONOUS must be GROUP, FULL, EXTRA, NORMAL or OFF, "
                              f"got {sync!r}")
        return cls(
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            namespace=env.get("BEADWIRE_NAMESPACE") or DEFAULT_NAMESPACE,
            data_dir=data_dir,
            broker=broker,
            presence_ttl=_int(env, "BEADWIRE_PRESENCE_TTL", DEFAULT_PRESENCE_TTL, 1),
            stale_claim_seconds=_int(env, "BEADWIRE_STALE_CLAIM_SECONDS", DEFAULT_STALE_CLAIM_SECONDS, 1),
            max_body=_int(env, "BEADWIRE_MAX_BODY", DEFAULT_MAX_BODY, 1024),
            max_line=_int(env, "BEADWIRE_MAX_LINE", DEFAULT_MAX_LINE, 1024),
            max_sync_beads=_int(env, "BEADWIRE_MAX_SYNC_BEADS", DEFAULT_MAX_SYNC_BEADS, 1),
            sqlite_synchronous=sync,
            log_level=env.get("BEADWIRE_LOG_LEVEL", "WARNING").upper(),
            publish_inline=_bool(env, "BEADWIRE_PUBLISH_INLINE", True),
            pg_prepare=_bool(env, "BEADWIRE_PG_PREPARE", True),
            retention_days=_int(env, "BEADWIRE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1),
            sync_history_days=_int(env, "BEADWIRE_SYNC_HISTORY_DAYS", DEFAULT_SYNC_HISTORY_DAYS, 1),
            audit_days=_int(env, "BEADWIRE_AUDIT_DAYS", DEFAULT_AUDIT_DAYS, 1),
            remind_after=_int(env, "BEADWIRE_REMIND_AFTER", DEFAULT_REMIND_AFTER, 1),
            rate_token=_int(env, "BEADWIRE_RATE_TOKEN", DEFAULT_RATE_TOKEN),
            rate_token_burst=_int(env, "BEADWIRE_RATE_TOKEN_BURST", DEFAULT_RATE_TOKEN_BURST, 1),
            rate_project=_int(env, "BEADWIRE_RATE_PROJECT", DEFAULT_RATE_PROJECT),
            rate_project_burst=_int(env, "BEADWIRE_RATE_PROJECT_BURST", DEFAULT_RATE_PROJECT_BURST, 1),
            rate_ip=_int(env, "BEADWIRE_RATE_IP", DEFAULT_RATE_IP),
            rate_ip_burst=_int(env, "BEADWIRE_RATE_IP_BURST", DEFAULT_RATE_IP_BURST, 1),
            max_depth=_int(env, "BEADWIRE_MAX_DEPTH", DEFAULT_MAX_DEPTH, 2),
            redis_cluster=_bool(env, "BEADWIRE_REDIS_CLUSTER", False),
            log_format=_log_format(env),
            metrics_token=env.get("BEADWIRE_METRICS_TOKEN", ""),
            webhook_allow_private=_bool(env, "BEADWIRE_WEBHOOK_ALLOW_PRIVATE", False),
            waiters_token=_int(env, "BEADWIRE_WAITERS_TOKEN", DEFAULT_WAITERS_TOKEN),
            waiters_project=_int(env, "BEADWIRE_WAITERS_PROJECT", DEFAULT_WAITERS_PROJECT),
            header_timeout=_int(env, "BEADWIRE_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT, 1),
            body_timeout=_int(env, "BEADWIRE_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT, 1),
            admin_token=env.get("BEADWIRE_ADMIN_TOKEN", ""),
            open_signup=(_bool(env, "BEADWIRE_OPEN_SIGNUP", False) if env.get("BEADWIRE_OPEN_SIGNUP")
                         else None),
        )

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and `wire serve` use it)."""
        return replace(self, **changes)
