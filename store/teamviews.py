"""Projects and workspaces as the API shows them (whoami, status, the team, init): domain objects.

The store answers with these; the schemas in web/schemas/identity.py dump them, so each shape is
written once, there. Field order is the order of the keys sent; a field holding `ABSENT` is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store.beadviews import ABSENT, ClaimView


@dataclass
class ProjectRef:
    id: int
    slug: str


@dataclass
class ProjectView:
    id: int
    slug: str
    name: str
    stale_claim_seconds: int | None


@dataclass
class WorkspaceView:
    """A member of the team: who, where, whether online, its claims; on the team view (not in an
    init's answer) whether it sits idle with a claim (`idle_*`); on whoami its `project`."""

    id: int
    alias: str
    role: str
    human: str
    repo: str
    hostname: str
    path: str
    branch: str
    online: bool
    status: str
    last_seen: str | None
    claims: list[ClaimView] = field(default_factory=list)
    idle_with_claim: Any = ABSENT
    idle_since: Any = ABSENT
    idle_minutes: Any = ABSENT
    project: Any = ABSENT  # whoami: a ProjectRef


@dataclass
class StatusView:
    project: ProjectView
    me: WorkspaceView
    team: list[WorkspaceView]


@dataclass
class InitView:
    """An init's answer; `created` (a new workspace: 201) and `rebuild` (the first beat asked for the
    project's mailboxes to be rebuilt) are for the view, not sent."""

    project: ProjectView
    workspace: WorkspaceView
    token: str
    project_key: Any = ABSENT  # only when this init created the project
    created: bool = False
    rebuild: bool = False


@dataclass
class Health:
    status: str
    redis: str
    database: str
