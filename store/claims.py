"""Claims: who works on which bead. The SQL row is the truth; a unique index on `claim.bead`
makes the database itself pick exactly one winner when agents race, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from store import Store, db, outbox, queries, steer
from store.acting import is_human
from store.beads import change_status, status_data, tell_subscribers, update_fields
from store.beadviews import (
    BeadView,
    Claimed,
    ClaimView,
    Closed,
    Released,
    bead_full,
    bead_view,
    bead_views,
    claim_view,
)
from store.errors import ClaimConflict, Conflict, InvalidInput, NotHeld, WorkspaceNotFound
from store.gitstate import claim_git, commits_of, record_commits
from store.graph import DONE_STATUSES, PARENT_TYPE, load_around, load_graph
from store.lookup import beads_by_pk, get_bead, split_ref
from store.messages import notify
from store.models import Bead, Claim, Dependency, Project, Workspace
from store.readiness import NOT_CLAIMABLE_HINT, announce, announce_if_ready, claim_refusal
from store.unit import UnitOfWork
from store.util import alias_key, iso, now, unstorable_text


def stale_limit(st: Store, project: Project) -> int:
    return project.stale_claim_seconds or st.settings.stale_claim_seconds


#: A holder as `is_stale` reads it: a workspace row, a team member, or the holder a claim read.
HolderRow = Workspace | queries.Member | queries.Holder


def offline_for(st: Store, ws: HolderRow, beats: dict[int, float] | None = None) -> float:
    """Seconds since the workspace was last seen (Redis beat or SQL last_seen, the later)."""
    beat = (beats or {}).get(ws.id)
    if beats is None:
        beat = st.redis.last_beat(ws.project_id, ws.id)
    return now() - max(beat or 0.0, ws.last_seen_ts)


def is_stale(st: Store, project: Project, holder: HolderRow, beats: dict[int, float] | None = None) -> bool:
    """Whether the holder's claims count as stale now.

    Computed, not read from `claim.stale`: a holder who comes back is no longer stale."""
    return holder.revoked or offline_for(st, holder, beats) > stale_limit(st, project)


def _read(project: Project, ws: Workspace, ref: str) -> queries.ClaimRead:
    """What the claim decides on: one statement for a bare id in the caller's repo (the usual case)."""
    repo, bare = split_ref(ref.strip())
    if not repo and not unstorable_text(bare):
        found = queries.claim_read_by_ref(ws.id, ws.repo_id, bare, PARENT_TYPE)
        if found is not None and found.bead.project_id == project.id:
            return found
    bead = get_bead(project.id, ws.repo_id, ref)
    found = queries.claim_read(ws.id, bead.id, PARENT_TYPE)
    if found is None:  # deleted since
        raise _changed_hands(bead.ref)
    return found


def _changed_hands(ref: str) -> ClaimConflict:
    return ClaimConflict(f"{ref} changed hands while claiming; try again")


def _holder_conflict(bead: Bead, holder: Workspace | queries.Holder) -> ClaimConflict:
    who = f"{holder.alias} ({holder.human})" if holder.human else holder.alias
    return ClaimConflict(
        f"{bead.ref} is being worked on by {who}",
        holder={"alias": holder.alias, "human": holder.human},
        hint="pick other work with 'wire ready', mail the holder, or take it with --jump-in REASON",
    )


def claim_bead(st: Store, project: Project, ws: Workspace, ref: str, jump_in: str | None = None) -> Claimed:
    """Claim a bead for `ws`; idempotent for the holder.

    Raises:
        BeadNotFound: unknown reference.
        ClaimConflict: held by someone else (no jump-in, not stale), or closed/blocked/deferred/epic.
    """
    read = _read(project, ws, ref)
    lone = not read.own_deps and not read.children
    # the rule's graph walk is read-only: done before taking the write lock
    if refusal := claim_refusal(read.bead, lone):
        # nobody holds it: no holder to name, nothing to jump in on
        raise ClaimConflict(refusal, hint=NOT_CLAIMABLE_HINT)
    try:
        plan = _claim(st, project, ws, read, jump_in)
    except peewee.IntegrityError:
        # another transaction inserted the claim between our read and our insert (PostgreSQL)
        bead = get_bead(project.id, ws.repo_id, ref)
        current = Claim.select(Claim, Workspace).join(Workspace).where(Claim.bead == bead.id).first()
        if current is None:
            raise _changed_hands(bead.ref) from None
        raise _holder_conflict(bead, current.workspace) from None
    # the bead as `bead_views` reads it: its dependencies (none when lone), claim and repo
    bead = plan.read.bead
    deps = () if lone else Dependency.select().where(Dependency.bead == bead.id).order_by(Dependency.id)
    return Claimed(True, plan.already, plan.previous,
                   bead_view(bead, deps, None, plan.claim, canonical=plan.read.canonical))


@dataclass
class _Plan:
    """A claim decided on one read: held by the caller already, or to be written (taking over
    `previous`, a stale or jumped-in-on claim, if any); `claim` is the claim the answer shows."""

    read: queries.ClaimRead
    already: bool
    previous: ClaimView | None
    claim: ClaimView | None = None


def _claim(st: Store, project: Project, ws: Workspace, read: queries.ClaimRead, jump_in: str | None) -> _Plan:
    """Decide on `read`, taken before the write lock, so that the lock is held for the writes only.

    Refusals are decided there and then (a read-only answer). A free bead is written at once: its first
    write (`queries.take_claim`) checks that nothing decided on has changed since the read. When it
    has, or when the bead is held (by the caller: the answer is read under the lock, as it commits;
    by someone else: a takeover), it is read again under the lock and decided again.
    """
    plan = _decide(st, project, ws, read, jump_in)
    with db.transaction() as uow:
        if plan.already or plan.previous is not None or not _write(uow, project, ws, plan, jump_in):
            locked = queries.claim_read(ws.id, read.bead.id, PARENT_TYPE, locked=True)
            if locked is None:
                raise _changed_hands(read.bead.ref)
            plan = _decide(st, project, ws, locked, jump_in)
            if not plan.already and not _write(uow, project, ws, plan, jump_in):
                raise _changed_hands(read.bead.ref)
    return plan


def _decide(st: Store, project: Project, ws: Workspace, read: queries.ClaimRead, jump_in: str | None
            ) -> _Plan:
    """Whether `ws` holds the bead already, or may claim it (taking over whose claim).

    Raises:
        ClaimConflict: closed meanwhile, held by someone else (not stale, no jump-in), the claimer
            is paused, or the bead is assigned to someone else (no jump-in).
    """
    bead, holder = read.bead, read.holder
    if bead.status not in ("open", "in_progress"):  # closed (or parked) since the rule was checked
        raise ClaimConflict(f"{bead.ref} is {bead.status}")
    if holder is not None and holder.id == ws.id:
        return _Plan(read, True, None, _holder_view(holder))
    _check_steering(read, ws, jump_in)
    if holder is None:
        return _Plan(read, False, None)
    stale = is_stale(st, project, holder)
    if not jump_in and not stale:
        raise _holder_conflict(bead, holder)
    return _Plan(read, False, _holder_view(holder, stale))


def _holder_view(holder: queries.Holder, stale: bool | None = None) -> ClaimView:
    return ClaimView(holder.alias, holder.human, iso(holder.claimed_ts),
                     holder.stale if stale is None else stale, holder.reason)


def _write(uow: UnitOfWork, project: Project, ws: Workspace, plan: _Plan, jump_in: str | None) -> bool:
    """Write the claim `plan` decided on; False (nothing written) when its read no longer holds."""
    read, bead, ts = plan.read, plan.read.bead, now()
    data = status_data(bead, "in_progress", ts)
    if plan.previous is not None:  # decided under the lock (see `_claim`): the read holds
        _take_over(uow, project, ws, bead, read.holder, jump_in)
    if not queries.take_claim(read, ws.id, ws.alias, ts, data, jump_in or ""):  # first write: see `_claim`
        return False
    if _bound_to_other(bead, ws):  # a jump-in over an assignment: the claimer takes it on
        _take_assignment(uow, project, bead, ws, jump_in or "")
    if bead.status != "in_progress" and read.subscribers:
        tell_subscribers(uow, bead, "in_progress", ws)
    bead.status, bead.updated_ts, bead.data, bead.assignee = "in_progress", ts, data, ws.alias
    outbox.record(uow, project.id, "claim.created",
                  {"bead": bead.ref, "alias": ws.alias, "title": bead.title},
                  workspace_id=ws.id, bead_ref=bead.ref)
    plan.claim = ClaimView(ws.alias, ws.human, iso(ts), False, jump_in or "")
    return True


def _take_over(uow: UnitOfWork, project: Project, ws: Workspace, bead: Bead, holder: queries.Holder | None,
               jump_in: str | None) -> None:
    """Drop the claim `ws` takes over (stale, or jumped in on) and tell its holder why."""
    assert holder is not None  # a plan with a previous claim read its holder
    queries.delete_claim(holder.claim_id)
    kind = "claim.jumped" if jump_in else "claim.taken_stale"
    message = (f"{ws.alias} jumped in on {bead.ref}: {jump_in}" if jump_in
               else f"{ws.alias} took {bead.ref}: your claim was stale")
    outbox.record(uow, project.id, kind,
                  {"bead": bead.ref, "alias": ws.alias, "previous": holder.alias,
                   "reason": jump_in or "stale", "message": message},
                  workspace_id=ws.id, bead_ref=bead.ref)
    notify(uow, project.id, holder.id, message,
           {"bead": bead.ref, "event": kind, "by": ws.alias, "reason": jump_in or "stale"})


def _bound_to_other(bead: Bead, ws: Workspace) -> bool:
    """Whether a binding assignment (store/steer.py) gives this bead to someone other than `ws`."""
    return bool(bead.assigned_by and bead.assignee) and alias_key(bead.assignee) != alias_key(ws.alias)


def _check_steering(read: queries.ClaimRead, ws: Workspace, jump_in: str | None) -> None:
    """Refuse a new claim by a paused agent (whatever the bead), and one on a bead assigned to someone
    else unless the claimer jumps in. The pause comes from the claim's read, not the auth cache (it
    may lag); the write checks it still holds."""
    bead, paused = read.bead, read.paused
    if paused is not None:
        raise ClaimConflict(f"you are {steer.paused_line(*paused)}; claim nothing new until resumed",
                            paused={"by": paused[0], "reason": paused[1]},
                            hint="finish or hand off what you hold; a coordinator or a human resumes you "
                                 "(wire agent resume ALIAS)")
    if _bound_to_other(bead, ws) and not jump_in:
        raise ClaimConflict(f"{bead.ref} is assigned to {bead.assignee} by {bead.assigned_by}",
                            assignment={"to": bead.assignee, "by": bead.assigned_by,
                                        "reason": bead.assign_reason},
                            hint=f"pick other work with 'wire ready', mail {bead.assignee}, "
                                 "or take it with --jump-in REASON")


def _take_assignment(uow: UnitOfWork, project: Project, bead: Bead, ws: Workspace, reason: str) -> None:
    """A jump-in over a binding assignment: the bead becomes the claimer's (plain assignee, so its own
    release frees it) and the previous assignee is told who took it and why."""
    previous, by = bead.assignee, bead.assigned_by
    queries.clear_binding(bead.id)
    bead.assigned_by, bead.assign_reason = "", ""
    outbox.record(uow, project.id, "bead.assigned", {"bead": bead.ref, "alias": ws.alias, "reason": reason,
                                                "before": {"assignee": previous, "assigned_by": by},
                                                "after": {"assignee": ws.alias, "assigned_by": ""}},
                  workspace_id=ws.id, bead_ref=bead.ref)
    try:
        target = steer.workspace_by_alias(project.id, previous)
    except WorkspaceNotFound:
        return
    notify(uow, project.id, target.id,
           f"{ws.alias} jumped in on {bead.ref}, assigned to you by {by}: {reason}",
           {"bead": bead.ref, "event": "assignment.jumped", "by": ws.alias, "reason": reason})


def release_bead(project: Project, ws: Workspace, ref: str, held: bool = True) -> Released:
    """Drop the caller's claim; the bead goes back to open. `held` False: an unclaimed bead is no
    error (`update --status open` of a bead nobody holds).

    Raises:
        Conflict: someone else holds it.
        NotHeld: nobody does, and `held`.
    """
    with db.transaction() as uow:
        bead = get_bead(project.id, ws.repo_id, ref)
        current = Claim.select(Claim, Workspace).join(Workspace).where(Claim.bead == bead.id).first()
        released = current is not None
        if current is not None and current.workspace_id != ws.id:
            raise Conflict(f"{bead.ref} is held by {current.workspace.alias}, not by you")
        if current is None and held:
            raise NotHeld(f"you hold no claim on {bead.ref}")
        if current is not None:
            current.delete_instance()
            if bead.status == "in_progress":  # a binding assignment outlives the claim (store/steer.py)
                change_status(uow, bead, "open", ws, None if bead.assigned_by else "")
            outbox.record(uow, project.id, "claim.released", {"bead": bead.ref, "alias": ws.alias},
                          workspace_id=ws.id, bead_ref=bead.ref)
            announce_if_ready(uow, project.id, ws, [bead.id], "released")  # back on the market
    return Released(released, bead_full(bead))


def release_for(project: Project, actor: Workspace, ref: str, reason: str) -> Released:
    """Free whoever holds a bead (a person at the dashboard, for an agent that is gone or stuck);
    the holder is told who released it and why.

    Raises:
        InvalidInput: no reason given.
        Conflict: nobody holds the bead.
    """
    reason = reason.strip()
    with db.transaction() as uow:
        bead = get_bead(project.id, actor.repo_id, ref)  # first: another project's id is a 404, whatever else
        if not reason:
            raise InvalidInput("say why you release the claim: its holder is told")
        current = Claim.select(Claim, Workspace).join(Workspace).where(Claim.bead == bead.id).first()
        if current is None:
            raise Conflict(f"{bead.ref} is not claimed by anyone")
        holder = current.workspace
        current.delete_instance()
        if bead.status == "in_progress":
            change_status(uow, bead, "open", actor, "")
        who = f"{actor.alias} (human)" if is_human(actor) else actor.alias
        message = f"{who} released your claim on {bead.ref}: {reason}"
        outbox.record(uow, project.id, "claim.released",
                      {"bead": bead.ref, "alias": actor.alias, "holder": holder.alias,
                       "reason": reason, "message": message},
                      workspace_id=actor.id, bead_ref=bead.ref)
        if holder.id != actor.id:
            notify(uow, project.id, holder.id, message,
                   {"bead": bead.ref, "event": "claim.released", "by": actor.alias, "reason": reason})
        announce_if_ready(uow, project.id, actor, [bead.id], "released")
    return Released(True, bead_full(bead), holder.alias)


def close_bead(st: Store, project: Project, ws: Workspace, ref: str, reason: str = "") -> Closed:
    """Close a bead (releasing its claim) and return the beads that became ready.

    Raises:
        Conflict: another workspace holds it.
    """
    # the closer's git state (this very request's header, kept with presence): its commits naming the bead
    git = (st.redis.presence_of(project.id, ws.id) or {}).get("git")
    with db.transaction() as uow:
        bead = get_bead(project.id, ws.repo_id, ref)
        current = Claim.select(Claim, Workspace).join(Workspace).where(Claim.bead == bead.id).first()
        if current is not None and current.workspace_id != ws.id:
            raise Conflict(f"{bead.ref} is held by {current.workspace.alias}; only the holder closes it")
        record_commits(bead, git)
        graph = load_graph(project.id)
        before = set(graph.ready(now()))
        if current is not None:
            current.delete_instance()
        change_status(uow, bead, "closed", ws, None, {"closed_at": iso(now()), "close_reason": reason})
        graph.nodes[bead.id].status = "closed"
        graph.claimed.discard(bead.id)
        unblocked = [pk for pk in graph.ready(now()) if pk not in before and pk != bead.id]
        outbox.record(uow, project.id, "bead.closed", {"bead": bead.ref, "alias": ws.alias, "reason": reason,
                                                  "unblocked": [graph.nodes[pk].ref for pk in unblocked]},
                      workspace_id=ws.id, bead_ref=bead.ref)
        announce(uow, project.id, ws, unblocked, "unblocked")
    return Closed(bead_full(bead), bead_views(beads_by_pk(unblocked)), commits_of(bead.id))


def reopen_bead(project: Project, ws: Workspace, ref: str) -> BeadView:
    with db.transaction() as uow:
        bead = get_bead(project.id, ws.repo_id, ref)
        if bead.status not in DONE_STATUSES:
            raise Conflict(f"{bead.ref} is {bead.status}, not closed")
        change_status(uow, bead, "open", ws, None,
                    drop=("closed_at", "close_reason", "deleted_at", "deleted_by"))
        outbox.record(uow, project.id, "bead.reopened", {"bead": bead.ref, "alias": ws.alias},
                      workspace_id=ws.id, bead_ref=bead.ref)
        announce_if_ready(uow, project.id, ws, [bead.id], "reopened")
    return bead_full(bead)


def set_status(st: Store, project: Project, ws: Workspace, ref: str, status: str,
               jump_in: str | None = None) -> BeadView | Closed:
    """`wire update --status`: in_progress claims, closed closes (answered like `close_bead`), open
    releases or reopens."""
    if status == "in_progress":
        return claim_bead(st, project, ws, ref, jump_in).bead
    if status == "closed":
        return close_bead(st, project, ws, ref)  # answers like /close: the bead and what it unblocked
    bead = get_bead(project.id, ws.repo_id, ref)
    if status == "open" and bead.status in DONE_STATUSES:
        return reopen_bead(project, ws, ref)
    if status == "open" and bead.status in ("open", "in_progress"):
        return release_bead(project, ws, ref, held=False).bead
    with db.transaction() as uow:
        bead = get_bead(project.id, ws.repo_id, ref)
        holder = Claim.select(Claim, Workspace).join(Workspace).where(Claim.bead == bead.id).first()
        if holder is not None and holder.workspace_id != ws.id:
            raise Conflict(f"{bead.ref} is held by {holder.workspace.alias}")
        if holder is not None:
            holder.delete_instance()
        change_status(uow, bead, status, ws, "" if holder is not None and not bead.assigned_by else None)
        outbox.record(uow, project.id, "bead.status", {"bead": bead.ref, "alias": ws.alias, "status": status},
                      workspace_id=ws.id, bead_ref=bead.ref)
        if status == "open":  # from blocked, deferred, ...: work again
            announce_if_ready(uow, project.id, ws, [bead.id], "reset")
    return bead_full(bead)


def update_bead(st: Store, project: Project, ws: Workspace, ref: str, changes: dict[str, Any],
                status: str | None = None, jump_in: str | None = None) -> BeadView | Closed:
    """`PATCH /beads/<ref>`: field edits and a status change, all or nothing.

    Raises:
        ClaimConflict, Conflict: the status change is refused (and no field is changed either).
    """
    with db.transaction():
        if changes:
            update_fields(project.id, ws, ref, changes)
        if status:
            return set_status(st, project, ws, ref, status, jump_in)
    return bead_full(get_bead(project.id, ws.repo_id, ref))


def list_claims(st: Store, project: Project) -> list[ClaimView]:
    claims = list(Claim.select(Claim, Workspace, Bead).join(Workspace).switch(Claim).join(Bead)
                  .where(Claim.project == project.id).order_by(Claim.claimed_ts))
    beats = st.redis.last_beats(project.id)
    epics = epics_of(project.id, [c.bead_id for c in claims])
    online = st.redis.presence(project.id, now() - st.settings.presence_ttl) if claims else {}
    out = []
    for c in claims:
        view = claim_view(c, c.workspace, c.bead, epics.get(c.bead_id),
                          is_stale(st, project, c.workspace, beats))
        # as the team view
        view.git = claim_git(online.get(c.workspace_id, (0.0, {}))[1].get("git"), c.bead.ref)
        out.append(view)
    return out


def epics_of(project_id: int, pks: list[int]) -> dict[int, dict[str, Any]]:
    """Each bead's top ancestor through parent-child, as {"id", "title"} (beads at the top: none)."""
    if not pks or not _has_parents(pks):
        return {}
    graph = load_around(project_id, pks)
    out = {}
    for pk in pks:
        top = graph.top_ancestor(pk)
        if top is not None:
            out[pk] = {"id": graph.nodes[top].ref, "title": graph.nodes[top].title}
    return out


def _has_parents(pks: list[int]) -> bool:
    """Whether any of these beads has a parent-child dependency (else none has an epic: no graph)."""
    return queries.any_has_type(pks, PARENT_TYPE)


def mine(project: Project, ws: Workspace) -> list[BeadView]:
    held = Claim.select(Claim.bead).where(Claim.workspace == ws.id).order_by(Claim.claimed_ts)
    pks = [pk for (pk,) in held.tuples()]
    return bead_views(beads_by_pk(pks))


def mark_stale_claims(st: Store) -> int:
    """Sweep: flag claims whose holders have been offline past the limit, and tell the holder's
    team (the project's coordinators, else everyone) and the holder once."""
    marked = 0
    for project in list(Project.select()):  # read before writing: see store/messages.rebuild_mailboxes
        beats = st.redis.last_beats(project.id)
        claims = Claim.select(Claim, Workspace, Bead).join(Workspace).switch(Claim).join(Bead).where(
            Claim.project == project.id, Claim.stale == False)
        for claim in list(claims):
            if is_stale(st, project, claim.workspace, beats):
                marked += _mark_stale(project, claim)
    return marked


def mark_claims_of_stale(project: Project, holder: Workspace, why: str) -> list[str]:
    """Mark every claim of `holder` stale now (e.g. its workspace was revoked) and tell its team, as
    the sweep does; returns the beads."""
    claims = Claim.select(Claim, Workspace, Bead).join(Workspace).switch(Claim).join(Bead).where(
        Claim.workspace == holder.id, Claim.stale == False)
    return [claim.bead.ref for claim in list(claims) if _mark_stale(project, claim, why)]


def _mark_stale(project: Project, claim: Claim, why: str = "offline for a while") -> int:
    holder, bead = claim.workspace, claim.bead
    text = (f"{holder.alias}'s claim on {bead.ref} ({bead.title[:60]}) is stale: {why}; "
            f"anyone may take it with `wire claim {bead.ref}`")
    with db.transaction() as uow:
        # the conditional update makes the notice happen once even with several sweepers
        if not Claim.update(stale=True).where(Claim.id == claim.id, Claim.stale == False).execute():
            return 0
        outbox.record(uow, project.id, "claim.stale",
                      {"bead": bead.ref, "alias": holder.alias, "message": text},
                      workspace_id=holder.id, bead_ref=bead.ref)
        for ws_id in _team_of(project, holder):
            notify(uow, project.id, ws_id, text,
                   {"bead": bead.ref, "event": "claim.stale", "holder": holder.alias})
    return 1


def _team_of(project: Project, holder: Workspace) -> list[int]:
    """Who hears about a stale claim: the holder, plus the coordinators (else all teammates)."""
    live = Workspace.select(Workspace.id).where(Workspace.project == project.id, Workspace.revoked == False,
                                                Workspace.id != holder.id)
    coordinators = [pk for (pk,) in live.where(Workspace.role == "coordinator").tuples()]
    return [holder.id, *(coordinators or [pk for (pk,) in live.tuples()])]
