"""Join keys: a single-use key that lets one agent join a project (`wire init --join-key KEY`).

A human with the project key, or a coordinator, makes one for each agent it onboards (`wire key
join`, `POST /v1/join-keys`, the dashboard's "Add an agent" page). The key is shown once and only
its hash is kept. It registers one new workspace, never as coordinator (that stays a human's call),
within `JOIN_KEY_TTL` seconds; using it is part of the transaction that creates the workspace, so
two agents racing with one key get one workspace between them. The retention sweep deletes used
and expired keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from store import db
from store.errors import JoinKeyGone, JoinKeyRefused
from store.models import JoinKey, Project, Workspace
from store.util import JOIN_KEY_PREFIX, hash_secret, iso, new_secret, now

#: Seconds a join key stays valid.
JOIN_KEY_TTL = 24 * 3600
#: The role a join key can never register (a human makes a workspace coordinator: store/access.py).
COORDINATOR = "coordinator"


@dataclass
class JoinKeyMade:
    project: str  # its slug
    join_key: str  # bw_jk_..., shown this once
    expires_at: str | None
    join: str  # the command the agent runs


def create(project: Project, created_by: str, ttl: int = JOIN_KEY_TTL) -> JoinKeyMade:
    """Make a join key for `project` (returned this once) valid for `ttl` seconds."""
    key, ts = new_secret(JOIN_KEY_PREFIX), now()
    JoinKey.create(project=project.id, key_hash=hash_secret(key), created_by=created_by[:64], created_ts=ts,
                   expires_ts=ts + ttl)
    join = f"wire init --project {project.slug} --join-key {key}"
    return JoinKeyMade(project.slug, key, iso(ts + ttl), join)


def is_join_key(bearer: str) -> bool:
    return bearer.startswith(JOIN_KEY_PREFIX)


def check(project: Project | None, slug: str, key: str, role: str) -> JoinKey:
    """The usable join key `key` for project `slug`.

    Raises:
        JoinKeyRefused: unknown, for another project (or a project that does not exist), or asked to
            register a coordinator.
        JoinKeyGone: used already, or expired.
    """
    row = JoinKey.get_or_none(JoinKey.key_hash == hash_secret(key))
    if row is None or project is None or row.project_id != project.id:
        raise JoinKeyRefused(f"this join key does not let anyone join project {slug}: check the project "
                             "name, or ask for a new key (wire key join, or the dashboard's Add an agent "
                             "page)")
    if role == COORDINATOR:
        raise JoinKeyRefused("a join key cannot register a coordinator: join as another role, then a human "
                             "sets the role (wire workspace role ALIAS coordinator --key KEY)")
    _usable(row, now())
    return row


def _usable(row: JoinKey, at: float) -> None:
    if row.used_ts is not None:
        raise JoinKeyGone("this join key has been used already (each one registers one agent): "
                          "ask for a new one")
    if row.expires_ts <= at:
        raise JoinKeyGone(f"this join key expired at {iso(row.expires_ts)}: ask for a new one")


def consume(row: JoinKey, ws: Workspace) -> None:
    """Mark the key used by `ws`; call inside the transaction that created `ws`.

    Raises:
        JoinKeyGone: another agent used it first, or it expired meanwhile (the transaction rolls back).
    """
    at = now()
    fresh = (JoinKey.id == row.id) & JoinKey.used_ts.is_null() & (JoinKey.expires_ts > at)
    if JoinKey.update(used_ts=at, workspace=ws.id).where(fresh).execute() != 1:
        _usable(JoinKey.get_by_id(row.id), at)
        raise JoinKeyGone("this join key is no longer usable: ask for a new one")


def purge(before: float | None = None) -> int:
    """Delete used keys and keys expired before `before` (default: now); returns how many."""
    at = now() if before is None else before
    with db.transaction():
        return JoinKey.delete().where(JoinKey.used_ts.is_null(False) | (JoinKey.expires_ts <= at)).execute()
