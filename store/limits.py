"""Rate limits: the buckets of a request (per workspace token, per project, per project key, per
client address), shaped from `Settings`. Workspace calls take theirs in the heartbeat's round trip
(heartbeat.lua, store/workspaces.py); the others call `take_key` / `take_ip` (ratelimit.lua).
"""

from __future__ import annotations

from store import Store
from store.config import Settings
from store.redis import Rate
from store.util import now


def rates(settings: Settings) -> dict[str, Rate]:
    """The bucket shapes of `settings` by name: token, project, ip (the project key shares the token's)."""
    return {"token": Rate(settings.rate_token, settings.rate_token_burst),
            "project": Rate(settings.rate_project, settings.rate_project_burst),
            "ip": Rate(settings.rate_ip, settings.rate_ip_burst)}


def take_key(st: Store, project_id: int) -> None:
    """Charge a call made with the project key to the key's bucket and the project's.

    Raises:
        RateLimited: either bucket is empty.
    """
    shape, k = rates(st.settings), st.redis.keys
    st.redis.take([(k.key_bucket_key(project_id), shape["token"]),
                   (k.project_bucket_key(project_id), shape["project"])], now(), "project key or project")


def take_ip(st: Store, address: str) -> None:
    """Charge an unauthenticated call to its client address's bucket.

    Raises:
        RateLimited: the bucket is empty.
    """
    shape = rates(st.settings)["ip"]
    if shape.per_second > 0:
        st.redis.take([(st.redis.keys.ip_bucket_key(address or "unknown"), shape)], now(), "client address")
