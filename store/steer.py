"""Steering agents: binding assignment of beads, and pausing an agent.

Assignment semantics (README "Assignment"):
- `bead.assignee` is the beads-format field; it becomes *binding* when a coordinator or a human sets
  it (`assigned_by` names them). A binding assignment heads the assignee's `ready` and `prime`, leaves
  everyone else's `ready`, and refuses anyone else's claim (store/claims.py) unless they jump in.
- A claim by the assignee keeps the assignment; a release by anyone keeps it too (the decision stands
  until `unassign`). A jump-in reassigns the bead to the claimer (a plain, non-binding assignee) and
  tells the previous assignee. A plain agent writing `assignee` sets the non-binding field, as before.
- Closing a bead keeps its assignee (history), but closed beads are never in anyone's ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from store import Store, audit, db, outbox
from store.audit import Actor
from store.beadviews import BeadView, bead_full
from store.errors import Forbidden, InvalidInput, WorkspaceNotFound
from store.lookup import get_bead
from store.messages import notify
from store.models import Bead, Project, Workspace
from store.unit import UnitOfWork
from store.util import alias_key, iso, now

#: The one role whose agents may steer others (besides human credentials).
COORDINATOR = "coordinator"
MAX_REASON = 2000


def may_steer(actor: Actor, ws: Workspace | None) -> bool:
    """Coordinators and human credentials assign and pause; other agents may not."""
    return actor.is_human or (ws is not None and ws.role == COORDINATOR)


def require_steer(actor: Actor, ws: Workspace | None, what: str) -> None:
    if not may_steer(actor, ws):
        raise Forbidden(f"only a coordinator or a human ({audit.KEY}, dashboard) may {what}")


def workspace_by_alias(project_id: int, alias: str) -> Workspace:
    found = (Workspace.select().where(Workspace.project == project_id,
                                      peewee.fn.LOWER(Workspace.alias) == alias_key(alias.strip()),
                                      Workspace.revoked == False).first())
    if found is None:
        raise WorkspaceNotFound(f"no agent {alias!r} in this project")
    return found


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"the reason is longer than {MAX_REASON} characters")
    return reason


# -- assignment --------------------------------------------------------------------------------

def set_assignee(uow: UnitOfWork, project_id: int, bead: Bead, alias: str, actor: Actor, binding: bool,
                 reason: str = "") -> bool:
    """The one place a bead's assignee changes on purpose (assign, unassign, PATCH `assignee`); inside
    the caller's transaction. `binding`: a coordinator's or a human's assignment (see the module doc).
    A binding change tells the new assignee (and a binding previous one); returns whether it changed."""
    alias, reason = alias.strip(), _reason(reason)
    target = _target(project_id, alias, binding) if alias else None
    if target is not None:
        alias = target.alias  # as the workspace writes it
    by = actor.name if binding and alias else ""
    before = {"assignee": bead.assignee, "assigned_by": bead.assigned_by, "reason": bead.assign_reason}
    after = {"assignee": alias, "assigned_by": by, "reason": reason if by else ""}
    if before == after:
        return False
    Bead.update(assignee=alias, assigned_by=by, assign_reason=after["reason"]).where(
        Bead.id == bead.id).execute()
    bead.assignee, bead.assigned_by, bead.assign_reason = alias, by, after["reason"]
    kind = "bead.assigned" if alias else "bead.unassigned"
    outbox.record(uow, project_id, kind,
                  {"bead": bead.ref, "alias": actor.name, "before": before, "after": after},
                  bead_ref=bead.ref)
    # a plain assignee is the beads field only, as it always was: no notice (nor anything refused)
    if by and target is not None and target.alias != before["assignee"] and actor.name != target.alias:
        why = f": {reason}" if reason else ""
        notify(uow, project_id, target.id,
               f"{bead.ref} was assigned to you by {actor.name}{why} ({bead.title[:80]})",
               {"bead": bead.ref, "event": kind, "by": actor.name, "reason": reason})
    if before["assigned_by"] and before["assignee"] and alias_key(before["assignee"]) != alias_key(alias):
        _tell_previous(uow, project_id, bead, before["assignee"], f"{bead.ref} is no longer assigned to you "
                       f"(by {actor.name}{': ' + reason if reason else ''})", actor)
    return True


def _target(project_id: int, alias: str, binding: bool) -> Workspace | None:
    """The assignee's workspace; a plain assignee may name anyone (the beads field is free text)."""
    try:
        return workspace_by_alias(project_id, alias)
    except WorkspaceNotFound:
        if binding:
            raise
        return None


def _tell_previous(uow: UnitOfWork, project_id: int, bead: Bead, alias: str, text: str, actor: Actor) -> None:
    try:
        previous = workspace_by_alias(project_id, alias)
    except WorkspaceNotFound:
        return
    if previous.alias != actor.name:
        notify(uow, project_id, previous.id, text,
               {"bead": bead.ref, "event": "bead.unassigned", "by": actor.name})


def assign(project: Project, ws: Workspace | None, actor: Actor, ref: str, alias: str,
           reason: str = "") -> BeadView:
    """`wire assign`: a binding assignment (coordinators and humans).

    Raises:
        Forbidden: the caller is an agent other than a coordinator.
        WorkspaceNotFound, BeadNotFound: unknown alias or bead.
    """
    if not alias.strip():
        raise InvalidInput("name the agent to assign (or unassign the bead)")
    with db.transaction() as uow:
        bead = get_bead(project.id, ws.repo_id if ws else 0, ref)  # first: another project's bead is a 404
        require_steer(actor, ws, "assign beads")
        set_assignee(uow, project.id, bead, alias, actor, binding=True, reason=reason)
    return bead_full(bead)


def unassign(project: Project, ws: Workspace | None, actor: Actor, ref: str) -> BeadView:
    with db.transaction() as uow:
        bead = get_bead(project.id, ws.repo_id if ws else 0, ref)
        require_steer(actor, ws, "unassign beads")
        set_assignee(uow, project.id, bead, "", actor, binding=True)
    return bead_full(bead)


def assignment_json(bead: Bead) -> dict[str, Any] | None:
    """`{"to", "by", "reason"}` of a binding assignment, else None."""
    if not (bead.assignee and bead.assigned_by):
        return None
    return {"to": bead.assignee, "by": bead.assigned_by, "reason": bead.assign_reason}


def assigned_to(project_id: int, alias: str) -> list[Bead]:
    """Open beads bound to `alias` (for prime), most urgent first."""
    return list(Bead.select()
                .where(Bead.project == project_id, peewee.fn.LOWER(Bead.assignee) == alias_key(alias),
                       Bead.assigned_by != "", Bead.status.in_(("open", "in_progress", "blocked")))
                .order_by(Bead.priority, Bead.created_ts.desc()).limit(50))


def bound_split(project_id: int, alias: str) -> tuple[set[int], set[int]]:
    """Ids of open beads bound to `alias` (they head its ready) and to others (they leave it); one query."""
    mine: set[int] = set()
    others: set[int] = set()
    key = alias_key(alias)
    rows = Bead.select(Bead.id, Bead.assignee).where(Bead.project == project_id, Bead.assigned_by != "",
                                                     Bead.assignee != "", Bead.status == "open").tuples()
    for pk, assignee in rows:
        (mine if alias_key(assignee) == key else others).add(pk)
    return mine, others


# -- pause -------------------------------------------------------------------------------------

@dataclass
class Pause:
    by: str
    reason: str
    since: str | None


@dataclass
class PauseState:
    alias: str
    paused: Pause | None  # None: not paused


def pause(st: Store, project: Project, ws: Workspace | None, actor: Actor, alias: str,
          reason: str = "") -> PauseState:
    """Pause an agent: it keeps working on what it holds but may not claim more until resumed.

    Raises:
        Forbidden: the caller is an agent other than a coordinator.
        WorkspaceNotFound: unknown alias.
    """
    reason = _reason(reason)
    with db.transaction() as uow:
        target = workspace_by_alias(project.id, alias)  # first: another project's agent is a 404
        require_steer(actor, ws, "pause agents")
        before = {"paused_by": target.paused_by, "reason": target.paused_reason}
        Workspace.update(paused_by=actor.name, paused_reason=reason, paused_ts=now()).where(
            Workspace.id == target.id).execute()
        outbox.record(uow, project.id, "agent.paused",
                      {"alias": actor.name, "agent": target.alias, "before": before,
                       "after": {"paused_by": actor.name, "reason": reason}},
                      workspace_id=target.id)
        if actor.name != target.alias:
            why = f": {reason}" if reason else ""
            notify(uow, project.id, target.id, f"you were paused by {actor.name}{why}; "
                   "finish or hand off what you hold, and claim nothing new until resumed",
                   {"event": "agent.paused", "by": actor.name, "reason": reason})
    st.tokens.forget_workspace(target.id)  # this process's cached copy: the banner shows the pause at once
    return pause_state(Workspace.get_by_id(target.id))


def resume(st: Store, project: Project, ws: Workspace | None, actor: Actor, alias: str) -> PauseState:
    with db.transaction() as uow:
        target = workspace_by_alias(project.id, alias)
        require_steer(actor, ws, "resume agents")
        if target.paused_by:
            Workspace.update(paused_by="", paused_reason="", paused_ts=None).where(
                Workspace.id == target.id).execute()
            outbox.record(uow, project.id, "agent.resumed", {"alias": actor.name, "agent": target.alias,
                                                        "before": {"paused_by": target.paused_by,
                                                                   "reason": target.paused_reason}},
                          workspace_id=target.id)
            notify(uow, project.id, target.id, f"you were resumed by {actor.name}: you may claim work again",
                   {"event": "agent.resumed", "by": actor.name})
    st.tokens.forget_workspace(target.id)
    return pause_state(Workspace.get_by_id(target.id))


def pause_state(ws: Workspace) -> PauseState:
    if not ws.paused_by:
        return PauseState(ws.alias, None)
    since = iso(ws.paused_ts) if ws.paused_ts else None
    return PauseState(ws.alias, Pause(ws.paused_by, ws.paused_reason, since))


def paused_line(by: str, reason: str) -> str:
    """What the banner and prime say: `paused by maria: REASON`."""
    return f"paused by {by}: {reason}" if reason else f"paused by {by}"


def pause_of(workspace_id: int) -> tuple[str, str] | None:
    """(by, reason) read fresh from SQL (auth caches may lag), or None when not paused."""
    row = Workspace.select(Workspace.paused_by, Workspace.paused_reason).where(
        Workspace.id == workspace_id).tuples().first()
    return (row[0], row[1]) if row and row[0] else None
