"""Handoffs and the prime view: how work carries over between runs of coding agents.

Agents start every run with no memory of the last. Before stopping, an agent leaves a handoff:
for the next run of its own workspace, or for another agent taking over (who also gets a notice).
`prime()` composes, in one answer, what an agent needs when it starts: the latest handoff first,
then identity, its role's playbook summary, its unfinished claims, ready work, unread mail and
who is online.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from peewee import JOIN

from store import Store, db, messages, policies, steer
from store.beadviews import BeadView, bead_views
from store.claims import mine
from store.errors import InvalidInput
from store.models import Delivery, Handoff, Message, Project, Workspace
from store.readiness import ready
from store.teamviews import WorkspaceView
from store.util import iso, now
from store.workspaces import project_view, team

#: Largest handoff body, in bytes (a page of notes; the rest belongs in beads and comments).
MAX_BODY = 16 * 1024
#: Ready beads and unread subjects the prime view lists.
PRIME_READY = 10
PRIME_MAIL = 5
#: Characters of the role playbook the prime view carries (`wire policy` shows all of it).
PLAYBOOK_SUMMARY = 1500


@dataclass
class HandoffView:
    id: int
    from_: str  # `from` in the answer
    to: str | None
    body: str
    created_at: str | None


@dataclass
class Primed:
    """`GET /v1/prime`, most important first."""

    handoff: HandoffView | None
    #: {"by", "reason"} while the agent is paused
    paused: dict[str, Any] | None
    assigned: list[BeadView]
    me: dict[str, Any]
    playbook: dict[str, Any]
    claims: list[BeadView]
    ready: list[BeadView]
    mail: dict[str, Any]
    online: list[dict[str, Any]]


def leave(project: Project, ws: Workspace, body: str, to: str | None = None) -> HandoffView:
    """Store a handoff (for our next run, or for alias `to`, who is also sent a notice).

    Raises:
        InvalidInput: empty or oversize body.
        WorkspaceNotFound: `to` is not an alias of the project (with close matches).
    """
    if not body.strip():
        raise InvalidInput("the handoff is empty: say what is done, what is next and what to watch out for")
    if len(body.encode()) > MAX_BODY:
        raise InvalidInput(f"the handoff is larger than {MAX_BODY // 1024} KiB: put details in bead comments")
    target = _recipient(project, to) if to else None
    with db.transaction() as uow:
        row = Handoff.create(project=project.id, workspace=ws.id, to_workspace=target.id if target else None,
                             body=body, created_ts=now())
        if target is not None and target.id != ws.id:
            messages.notify(uow, project.id, target.id, f"handoff from {ws.alias}: read it with `wire prime`",
                            {"handoff": row.id, "from": ws.alias})
    return handoff_view(row, ws.alias, target.alias if target else None)


def _recipient(project: Project, alias: str) -> Workspace:
    found = Workspace.get_or_none(Workspace.project == project.id, Workspace.alias == alias,
                                  Workspace.revoked == False)
    if found is None:
        raise messages._unknown(project, alias)
    return found


def latest(ws: Workspace) -> HandoffView | None:
    """The newest handoff for `ws`: addressed to it, or left by it for its own next run."""
    row = (Handoff.select()
           .where((Handoff.to_workspace == ws.id)
                  | ((Handoff.workspace == ws.id) & Handoff.to_workspace.is_null()))
           .order_by(Handoff.created_ts.desc(), Handoff.id.desc()).first())
    if row is None:
        return None
    return handoff_view(row, row.workspace.alias, ws.alias if row.to_workspace_id else None)


def handoff_view(row: Handoff, from_alias: str, to_alias: str | None) -> HandoffView:
    return HandoffView(row.id, from_alias, to_alias, row.body, iso(row.created_ts))


# -- prime ------------------------------------------------------------------------------------

def prime(st: Store, project: Project, ws: Workspace) -> Primed:
    """Everything an agent needs at the start of a run, most important first."""
    members = team(st, project)
    me = next(w for w in members if w.id == ws.id)
    online = [_member(w) for w in members if w.online and w.id != ws.id]
    paused = steer.pause_of(ws.id)
    rows = steer.assigned_to(project.id, ws.alias)
    assigned = bead_views(rows)
    for view, row in zip(assigned, rows):
        view.assignment = steer.assignment_json(row)
    # `wire prime` prints a pause and assigned beads before everything (cli/onboarding.py); the handoff
    # stays the first key of the answer, as clients of the API know it
    return Primed(latest(ws), {"by": paused[0], "reason": paused[1]} if paused else None, assigned,
                  {**_member(me), "human": me.human, "project": asdict(project_view(project))},
                  _playbook(project, ws.role), mine(project, ws),
                  ready(project.id, PRIME_READY, viewer=ws), _unread(ws), online)


def _member(w: WorkspaceView) -> dict[str, Any]:
    return {"alias": w.alias, "role": w.role, "repo": w.repo, "branch": w.branch,
            "claims": [c.bead for c in w.claims]}


def _playbook(project: Project, role: str) -> dict[str, Any]:
    view = policies.role_view(project, role)
    text = view.playbook or ""
    return {"role": view.playbook_role, "version": view.version, "summary": summary(text),
            "full": len(text) > PLAYBOOK_SUMMARY}


def summary(markdown: str, limit: int = PLAYBOOK_SUMMARY) -> str:
    """The playbook's opening and first section (its loop), cut at a line to at most `limit` chars."""
    lines, sections = [], 0
    for line in markdown.strip().splitlines():
        if line.startswith("## "):
            sections += 1
            if sections > 1:
                break
        lines.append(line)
    kept: list[str] = []
    for line in lines:
        if sum(len(k) + 1 for k in kept) + len(line) > limit:
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _unread(ws: Workspace) -> dict[str, Any]:
    """How many mail and notices are unread, and the newest few (subject or first line)."""
    unread = (Delivery.select().join(Message)
              .where(Delivery.recipient == ws.id, Delivery.acked_ts.is_null(), Message.kind != "chat"))
    newest = (Delivery.select(Delivery, Message, Workspace).join(Message)
              .join(Workspace, on=(Message.sender == Workspace.id), join_type=JOIN.LEFT_OUTER)
              .where(Delivery.recipient == ws.id, Delivery.acked_ts.is_null(), Message.kind != "chat")
              .order_by(Message.id.desc()).limit(PRIME_MAIL))
    latest_rows = [{"id": d.message.id, "kind": d.message.kind,
                    "from": d.message.sender.alias if d.message.sender else None,
                    "subject": d.message.subject or d.message.body.strip().split("\n", 1)[0][:120],
                    "created_at": iso(d.message.created_ts)} for d in newest]
    return {"unread": unread.count(), "latest": latest_rows}
