"""A project's settings: what `wire ready` shows an agent, and when a claim's holder counts as idle.

Stored as columns of the project row (schema 8) and read fresh from SQL on every call: the token
cache holds a copy of the project (store/workspaces.py) that may lag a change by its TTL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from store import db, outbox
from store.errors import Forbidden, InvalidInput, ProjectNotFound
from store.models import Project, Workspace

#: `ready_scope` values: "all" shows every ready bead (the agent's role's first, others marked);
#: "role" shows only the agent's role's beads and those without a role.
READY_SCOPES = ("all", "role")
#: Bounds of `idle_claim_minutes` (a day at most).
MIN_IDLE_MINUTES, MAX_IDLE_MINUTES = 1, 1440
#: The settings a project has, in the order they are shown.
NAMES = ("ready_scope", "idle_claim_minutes")
#: The role that may change settings besides a human with the project key.
COORDINATOR = "coordinator"


@dataclass(frozen=True)
class Settings:
    """A project's settings (fields in the order of `NAMES`)."""

    ready_scope: str
    idle_claim_minutes: int


def read(project_id: int) -> Settings:
    """The project's settings."""
    row = (Project.select(Project.ready_scope, Project.idle_claim_minutes)
           .where(Project.id == project_id).tuples().first())
    if row is None:
        raise ProjectNotFound(f"no project {project_id}")
    return Settings(*row)


def ready_scope(project_id: int) -> str:
    return read(project_id).ready_scope


def may_change(ws: Workspace | None) -> None:
    """Only a human (the project key, `ws` None) or a coordinator changes settings.

    Raises:
        Forbidden: `ws` is a workspace of another role.
    """
    if ws is not None and ws.role != COORDINATOR:
        raise Forbidden(f"project settings are changed by a coordinator or with the project key; "
                        f"{ws.alias} is a {ws.role}")


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, checked (the web schema checks them too: this guards every other caller).

    Raises:
        InvalidInput: an unknown setting, a value out of range, or nothing to change.
    """
    unknown = sorted(set(changes) - set(NAMES))
    if unknown:
        raise InvalidInput(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(NAMES)}")
    if not changes:
        raise InvalidInput(f"nothing to change: give one of {', '.join(NAMES)}")
    scope = changes.get("ready_scope", "all")
    if scope not in READY_SCOPES:
        raise InvalidInput(f"ready_scope must be one of {', '.join(READY_SCOPES)}, not {scope!r}")
    minutes = changes.get("idle_claim_minutes", MIN_IDLE_MINUTES)
    whole = isinstance(minutes, int) and not isinstance(minutes, bool)
    if not whole or not MIN_IDLE_MINUTES <= minutes <= MAX_IDLE_MINUTES:
        raise InvalidInput(f"idle_claim_minutes must be a whole number from {MIN_IDLE_MINUTES} to "
                           f"{MAX_IDLE_MINUTES}, not {minutes!r}")
    return changes


def update(project: Project, ws: Workspace | None, changes: dict[str, Any]) -> Settings:
    """Change some settings (all or none) and return them all; the team hears it (`project.settings`).

    Raises:
        Forbidden: the caller is neither a coordinator nor the project key.
        InvalidInput: see `validate`.
    """
    may_change(ws)
    changes = validate(dict(changes))
    with db.transaction() as uow:
        before = read(project.id)
        Project.update(**changes).where(Project.id == project.id).execute()
        changed = {k: v for k, v in changes.items() if getattr(before, k) != v}
        if changed:
            by = ws.alias if ws is not None else "project key"
            outbox.record(uow, project.id, "project.settings", {"changed": changed, "by": by},
                          workspace_id=ws.id if ws is not None else None)
        return replace(before, **changes)
