"""Key management: rotate a project's key, revoke a workspace's token. Humans only (the web layer
checks the project key); keys and tokens are stored as hashes and never logged or put in events.
"""

from __future__ import annotations

from dataclasses import dataclass

from store import Store, db, outbox
from store.acting import HUMAN_ROLE
from store.claims import mark_claims_of_stale
from store.errors import InvalidInput, WorkspaceNotFound
from store.models import Project, Workspace
from store.util import PROJECT_KEY_PREFIX, hash_secret, iso, new_secret, now


@dataclass
class Rotated:
    project: str  # its slug
    project_key: str  # shown this once
    rotated_at: str | None


@dataclass
class Revoked:
    alias: str
    revoked: bool
    already: bool
    stale_claims: list[str]
    released_reservations: int


@dataclass
class RoleSet:
    alias: str
    role: str
    previous: str


def rotate_key(project: Project) -> Rotated:
    """Give the project a new key (returned this once); the old one stops working at once.

    Admin calls check the key against SQL on every request (no cache), so nothing else is needed.
    """
    key, ts = new_secret(PROJECT_KEY_PREFIX), now()
    with db.transaction() as uow:
        Project.update(key_hash=hash_secret(key)).where(Project.id == project.id).execute()
        outbox.record(uow, project.id, "project.key_rotated", {"project": project.slug})
    return Rotated(project.slug, key, iso(ts))


def revoke_workspace(st: Store, project: Project, alias: str) -> Revoked:
    """Kill a workspace's token in every process at once; its claims go stale (its team is told),
    its reservations are released. Revoking twice is harmless (`already: true`).

    Raises:
        WorkspaceNotFound: no workspace of that alias in the project.
        Unavailable: Redis cannot be reached (SQL has it revoked: caches drop it within seconds).
    """
    ws = Workspace.get_or_none(Workspace.project == project.id, Workspace.alias == alias)
    if ws is None:
        raise WorkspaceNotFound(f"no workspace {alias} in project {project.slug}")
    with db.transaction() as uow:
        live = (Workspace.id == ws.id) & (Workspace.revoked == False)
        changed = Workspace.update(revoked=True).where(live).execute()
        if changed:
            outbox.record(uow, project.id, "workspace.revoked", {"alias": ws.alias}, workspace_id=ws.id)
    ws.revoked = True
    st.redis.revoke(project.id, ws.id)
    stale = mark_claims_of_stale(project, ws, "its workspace was revoked")
    released = st.redis.unreserve(project.id, ws.repo_id, ws.id, None)
    return Revoked(ws.alias, True, not changed, stale, len(released))


def set_role(st: Store, project: Project, alias: str, role: str) -> RoleSet:
    """A human sets a workspace's role (the only way into or out of coordinator: store/workspaces.py).

    The team hears it (`workspace.role_changed`). Other web processes may keep the old role in their
    token cache for up to its TTL (a few seconds).

    Raises:
        WorkspaceNotFound: no live workspace of that alias in the project.
    """
    live = (Workspace.project == project.id) & (Workspace.alias == alias) & (Workspace.revoked == False)
    ws = Workspace.get_or_none(live)
    if ws is None:
        raise WorkspaceNotFound(f"no workspace {alias} in project {project.slug}")
    if HUMAN_ROLE in (role, ws.role):  # a person's workspace is theirs alone, and no agent becomes one
        raise InvalidInput(f"role {HUMAN_ROLE!r} belongs to the people acting from the dashboard")
    previous = ws.role
    if role != previous:
        with db.transaction() as uow:
            Workspace.update(role=role).where(Workspace.id == ws.id).execute()
            change = {"alias": ws.alias, "role": role, "previous": previous}
            outbox.record(uow, project.id, "workspace.role_changed", change, workspace_id=ws.id)
        st.tokens.forget_workspace(ws.id)
    return RoleSet(ws.alias, role, previous)
