"""Wake on work and role routing: who hears that a bead became ready, and whose ready work it is.

When a change makes a bead ready (its last blocker closed, it was released, reopened, set back to
open, or created ready), the change's own transaction records a `bead.ready` outbox row (the
project event stream, where `wire watch --ready` and `wire wait-ready` look) and a notice to the
bead's subscribers and its assignee (their mailboxes, where plain `wire watch` looks). The one
definition of ready stays in store/graph.py; this module only asks it about the beads a change
touched.

A bead's role is its label `role:<name>` (so it round-trips in the beads file). An agent's role is
its workspace's. The project setting `ready_scope` (store/project_settings.py) says whether an agent
sees every ready bead, its own role's first ("all"), or only its role's and unroled ones ("role").
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from store import Store, db, outbox, project_settings, queries, steer
from store.beadviews import BeadView, ReadyWait, bead_full, bead_views
from store.graph import DONE_STATUSES, Graph, Node, load_around, load_graph
from store.lookup import beads_by_pk, get_bead
from store.messages import banner_item, notify
from store.models import Bead, Project, Repo, Subscription, Workspace
from store.unit import UnitOfWork
from store.util import now

#: The label prefix that gives a bead its role.
ROLE_PREFIX = "role:"
#: Why a bead became ready, as events and notices say it.
WHY = {"unblocked": "its last blocker closed", "released": "released", "reopened": "reopened",
       "reset": "set back to open", "created": "new", "synced": "by a beads-file sync"}
#: Longest title an event or notice carries.
TITLE_CUT = 120


def role_of(labels: Any) -> str | None:
    """The role a bead's labels give it (`role:frontend` -> `frontend`), or None."""
    for label in labels if isinstance(labels, list) else json.loads(labels or "[]"):
        if isinstance(label, str) and label.startswith(ROLE_PREFIX) and label[len(ROLE_PREFIX):]:
            return label[len(ROLE_PREFIX):]
    return None


def with_role(labels: list[str], role: str | None) -> list[str]:
    """`labels` with their role label replaced by `role:<role>` (none when `role` is empty)."""
    kept = [x for x in labels if not x.startswith(ROLE_PREFIX)]
    return [*kept, ROLE_PREFIX + role] if role else kept


def same_role(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def for_viewer(bead_role: str | None, viewer_role: str, scope: str) -> bool:
    """Whether a bead of `bead_role` is work for an agent of `viewer_role` under `scope`: unroled beads
    and its own role's always; another role's only when the project's scope is "all"."""
    return bead_role is None or same_role(bead_role, viewer_role) or scope != "role"


# -- announcing ---------------------------------------------------------------------------------

def announce_if_ready(uow: UnitOfWork,
                      project_id: int, actor: Workspace, pks: list[int], why: str) -> list[str]:
    """Announce those of `pks` that are ready now (call inside the change's transaction, after it);
    returns their refs."""
    if not pks:
        return []
    graph, ts = load_around(project_id, pks, with_children=True), now()
    now_ready = [pk for pk in pks if pk in graph.nodes and graph.is_ready(pk, ts)]
    return announce(uow, project_id, actor, now_ready, why)


#: Most beads one sync announces (the most urgent first): a first import of a big beads file makes
#: hundreds ready at once, and waiters re-check SQL anyway.
MAX_SYNC_ANNOUNCE = 20


def ready_set(project_id: int) -> set[int]:
    """Every ready bead of the project (before a change that may touch many: a sync)."""
    return set(load_graph(project_id, live_only=True).ready(now()))


def announce_newly_ready(uow: UnitOfWork,
                         project_id: int, actor: Workspace, before: set[int], why: str) -> list[str]:
    """Announce the beads ready now that were not in `before` (at most MAX_SYNC_ANNOUNCE)."""
    fresh = [pk for pk in load_graph(project_id, live_only=True).ready(now()) if pk not in before]
    return announce(uow, project_id, actor, fresh[:MAX_SYNC_ANNOUNCE], why)


def announce(uow: UnitOfWork, project_id: int, actor: Workspace, pks: list[int], why: str) -> list[str]:
    """Record `bead.ready` for each of `pks` (known ready) and notify its subscribers and assignee
    (not `actor`, who made it happen); inside the change's transaction."""
    refs = []
    rows = (Bead.select(Bead.id, Bead.ref, Bead.title, Bead.priority, Bead.labels, Bead.assignee,
                        Repo.canonical)
            .join(Repo).where(Bead.id.in_(pks)).tuples()) if pks else []
    order = {pk: i for i, pk in enumerate(pks)}
    for pk, ref, title, priority, labels, assignee, canonical in sorted(rows, key=lambda row: order[row[0]]):
        role = role_of(labels)
        outbox.record(uow, project_id, "bead.ready", {"bead": ref, "repo": canonical, "role": role or "",
                                                 "title": title[:TITLE_CUT], "priority": priority, "why": why,
                                                 "alias": actor.alias}, workspace_id=actor.id, bead_ref=ref)
        for ws_id, reason in _listeners(project_id, pk, assignee, actor.id).items():
            text = f"{ref} is ready ({WHY.get(why, why)}; {_reason_text(reason)}): {title[:80]}"
            notify(uow, project_id, ws_id, text,
                   {"bead": ref, "event": "bead.ready", "why": reason, "by": actor.alias})
        refs.append(ref)
    return refs


def _listeners(project_id: int, pk: int, assignee: str, actor_id: int) -> dict[int, str]:
    """Workspace id -> why it hears of this bead: "assigned" (its assignee) or "subscribed"."""
    found = {ws_id: "subscribed" for (ws_id,) in Subscription.select(Subscription.workspace).where(
        Subscription.bead == pk).tuples()}
    if assignee:
        owner = (Workspace.select(Workspace.id)
                 .where(Workspace.project == project_id, Workspace.alias == assignee,
                        Workspace.revoked == False).tuples().first())
        if owner is not None:
            found[owner[0]] = "assigned"
    found.pop(actor_id, None)
    return found


def _reason_text(reason: str) -> str:
    return "assigned to you" if reason == "assigned" else "you subscribed"


# -- routing the ready list ---------------------------------------------------------------------

def roles_of_open(project_id: int) -> dict[int, str]:
    """pk -> role of the project's open beads that carry a role label (one query; unroled ones are left
    out)."""
    rows = queries.labelled(project_id, "open", f'%"{ROLE_PREFIX}%')
    return {row.id: role for row in rows if (role := role_of(row.labels)) is not None}


def route(pks: list[int], roles: dict[int, str], viewer_role: str, scope: str,
          only_role: str | None = None) -> list[int]:
    """The ready pks (in the rule's order) as an agent of `viewer_role` sees them: its role's first,
    then the rest in order; under scope "role" without other roles' beads; with `only_role`, just
    that role's beads."""
    if only_role is not None:
        return [pk for pk in pks if same_role(roles.get(pk), only_role)]
    visible = [pk for pk in pks if for_viewer(roles.get(pk), viewer_role, scope)]
    mine = [pk for pk in visible if same_role(roles.get(pk), viewer_role)]
    taken = set(mine)
    return mine + [pk for pk in visible if pk not in taken]


def ready(project_id: int, limit: int = 50, viewer: Workspace | None = None,
          only_role: str | None = None) -> list[BeadView]:
    """Ready beads, most urgent first (`wire ready`; also `store.beads.ready`); for a `viewer`, routed
    by role: its role's first, others' left out under the project's scope "role"; `only_role` keeps
    just that role's."""
    graph = load_graph(project_id, live_only=True)
    pks = graph.ready(now())
    if viewer is not None or only_role is not None:
        scope = project_settings.ready_scope(project_id) if viewer is not None else "all"
        pks = route(pks, roles_of_open(project_id), viewer.role if viewer else "", scope, only_role)
    if viewer is not None:
        pks = _assigned_first(project_id, viewer, pks)
    return bead_views(beads_by_pk(pks[:limit]))


def _assigned_first(project_id: int, viewer: Workspace, pks: list[int]) -> list[int]:
    """A viewer's ready: beads bound to it first, beads bound to others left out (store/steer.py)."""
    mine, others = steer.bound_split(project_id, viewer.alias)
    if not mine and not others:
        return pks
    return [pk for pk in pks if pk in mine] + [pk for pk in pks if pk not in mine and pk not in others]


# -- waiting for work (`wire watch --ready`, `wire wait-ready`) ---------------------------------
#
# Both read the project event stream's `bead.ready` entries after a cursor, and trust SQL, not the
# event: a bead announced ready may have been claimed since, so each candidate is checked again.
# While they wait they hold no database connection (a waiter holds a greenlet and a wake-up ticket:
# store/wakeups.py), and connect only to check a candidate.

#: Longest one wait holds the request (the CLI waits longer in slices, as for chat and watch).
MAX_SLICE = 30.0
#: Event stream entries read per round.
EVENT_BATCH = 200


@dataclass(frozen=True)
class Viewer:
    """Who waits for work: the workspace, its repo (canonical) and role."""

    project_id: int
    workspace_id: int
    repo: str
    role: str


def viewer_of(project: Project, ws: Workspace) -> Viewer:
    canonical = Repo.select(Repo.canonical).where(Repo.id == ws.repo_id).scalar() or ""
    return Viewer(project.id, ws.id, canonical, ws.role)


def candidates(st: Store, viewer: Viewer, cursor: str, bead: tuple[str, str] | None = None
               ) -> tuple[list[dict[str, Any]], str]:
    """`bead.ready` events after `cursor` that concern `viewer` (or, with `bead` = (repo, ref), that
    bead), and the cursor after everything read. Not yet checked against SQL.

    Raises:
        Unavailable: Redis cannot be reached.
    """
    found: list[dict[str, Any]] = []
    while True:
        entries = st.redis.events_after(viewer.project_id, cursor, EVENT_BATCH)
        for sid, fields in entries:
            cursor = sid
            if fields.get("kind") != "bead.ready":
                continue
            data = json.loads(fields.get("data") or "{}")
            if _concerns(data, viewer, bead):
                found.append(data)
        if len(entries) < EVENT_BATCH:
            return found, cursor


def _concerns(data: dict[str, Any], viewer: Viewer, bead: tuple[str, str] | None) -> bool:
    """The bead waited for, or any bead of the viewer's repo (its role is checked with SQL, against the
    scope as it is then: a coordinator may change it while an agent waits)."""
    if bead is not None:
        return (data.get("repo"), data.get("bead")) == bead
    return data.get("repo") == viewer.repo


def still_ready(viewer: Viewer, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those events whose bead is ready now (SQL) and is work for the viewer under the project's scope
    now, in order, each once, with the bead's role."""
    with _connected():
        scope = project_settings.ready_scope(viewer.project_id)
        events = [e for e in events if for_viewer(e.get("role") or None, viewer.role, scope)]
        wanted = {(e.get("repo"), e.get("bead")) for e in events}
        rows = (Bead.select(Bead.id, Repo.canonical, Bead.ref).join(Repo)
                .where(Bead.project == viewer.project_id, Bead.ref.in_([ref for _, ref in wanted])).tuples())
        pk_of = {(canonical, ref): pk for pk, canonical, ref in rows if (canonical, ref) in wanted}
        if not pk_of:
            return []
        graph, ts = load_around(viewer.project_id, list(pk_of.values()), with_children=True), now()
    out, seen = [], set()
    for e in events:
        pk = pk_of.get((e.get("repo"), e.get("bead")))
        if pk is not None and pk not in seen and graph.is_ready(pk, ts):
            seen.add(pk)
            out.append({"id": e["bead"], "repo": e["repo"], "title": e.get("title", ""),
                        "priority": e.get("priority"), "role": e.get("role") or None,
                        "why": e.get("why", "")})
    return out


@contextlib.contextmanager
def _connected() -> Iterator[None]:
    """The database for a moment: a waiter that has given its connection back takes one and returns it."""
    was_closed = db.database.is_closed()
    db.connect()
    try:
        yield
    finally:
        if was_closed:
            db.close()


def ready_now(viewer: Viewer, ws: Workspace, bead: Bead | None) -> BeadView | None:
    """The bead (or, without one, the first ready bead for `ws` in its repo, its role's first) if ready
    now, as the API shows beads; else None."""
    with _connected():
        if bead is not None:
            graph = load_around(viewer.project_id, [bead.id], with_children=True)
            fresh = Bead.get_or_none(Bead.id == bead.id)
            return bead_full(fresh) if fresh is not None and graph.is_ready(bead.id, now()) else None
        for found in ready(viewer.project_id, READY_LOOK, viewer=ws):
            if found.repo == viewer.repo:
                return found
    return None


#: How many ready beads `ready_now` looks through for one of the viewer's repo.
READY_LOOK = 200


def wait_ready(st: Store, project: Project, ws: Workspace, ref: str | None, timeout: float,
               before_waiting: Callable[[], None]) -> ReadyWait:
    """`GET /v1/wait-ready`: at once when the bead (or any bead for `ws`) is ready, else when one becomes
    ready, within `timeout` seconds. `before_waiting` runs once if it has to wait (the web layer takes
    a waiter slot and gives back the database connection there).

    Answers `{"ready": true, "bead": Bead}`, or on timeout `{"ready": false, "bead": null}` plus, for a
    named bead, `"reasons"` it is still not ready.

    Raises:
        BeadNotFound: `ref` names no bead of the project.
        Unavailable: Redis cannot be reached.
    """
    viewer = viewer_of(project, ws)
    cursor = st.redis.last_event_id(project.id)  # before the check: whatever happens after it is seen
    bead = get_bead(project.id, ws.repo_id, ref) if ref else None
    target = (bead.repo.canonical, bead.ref) if bead is not None else None
    found = ready_now(viewer, ws, bead)
    if found is None:
        before_waiting()

        def read() -> BeadView | None:
            nonlocal cursor
            events, cursor = candidates(st, viewer, cursor, target)
            return ready_now(viewer, ws, bead) if events else None

        found = st.redis.await_streams(project.id, [st.redis.events_stream(project.id)],
                                       int(max(timeout, 0.0) * 1000), read)
    if found:
        return ReadyWait(True, found)
    answer = ReadyWait(False, None)
    if bead is not None:
        with _connected():
            answer.reasons = load_graph(project.id).not_ready_reasons(bead.id, now())
    return answer


def watch_ready(st: Store, project: Project, ws: Workspace, cursor: str | None, timeout: float,
                seen: str | None, banner: dict[str, Any] | None, before_waiting: Callable[[], None]
                ) -> dict[str, Any]:
    """`GET /v1/watch?ready=1`: what plain watch answers (banner items, who waits), plus `ready`: beads
    that became ready for `ws` in its repo since `cursor` (none: from now) and are ready still, and
    the `cursor` to pass next time so nothing is missed between two watches.

    Raises:
        Unavailable: Redis cannot be reached.
    """
    viewer = viewer_of(project, ws)
    after = cursor or st.redis.last_event_id(project.id)  # a str, which `read` below can rely on
    events, after = candidates(st, viewer, after)
    now_ready = still_ready(viewer, events) if events else []
    items, waiting = (banner or {}).get("new") or [], (banner or {}).get("waiting") or []
    if now_ready or items or waiting:
        return {"items": items, "waiting": waiting, "ready": now_ready, "cursor": after}
    before_waiting()

    def read() -> tuple[list[Any], list[dict[str, Any]]] | None:
        nonlocal after
        entries = (st.redis.read_group(project.id, ws.id) if seen is None
                   else st.redis.mailbox_after(project.id, ws.id, seen))
        events, after = candidates(st, viewer, after)
        fresh = still_ready(viewer, events) if events else []
        return (entries, fresh) if entries or fresh else None

    streams = [st.redis.mailbox_stream(project.id, ws.id), st.redis.events_stream(project.id)]
    found = st.redis.await_streams(project.id, streams, int(max(timeout, 0.0) * 1000), read)
    entries, now_ready = found or ([], [])
    return {"items": [banner_item(fields, entry) for entry, fields in entries], "waiting": [],
            "ready": now_ready, "cursor": after}


# -- the rule, asked by a claim (store/claims.py) -------------------------------------------------

#: Reasons from the ready rule that also forbid a claim (status and "claimed" are handled here).
_CLAIM_BLOCKING = ("blocked by", "parent ", "deferred", "epic with")


def _lone_graph(bead: Bead) -> Graph:
    node = Node(bead.id, bead.repo_id, bead.ref, bead.status, bead.issue_type, bead.priority, bead.created_ts,
                bead.defer_ts, bead.title)
    return Graph(nodes={bead.id: node})


def claim_refusal(bead: Bead, lone: bool = False) -> str | None:
    """Why the rule forbids anyone to claim this bead, or None (`lone`: no dependencies, no children:
    the rule needs no graph)."""
    if bead.status in DONE_STATUSES:
        return f"{bead.ref} is {bead.status}"
    if bead.status not in ("open", "in_progress"):
        return f"{bead.ref} is {bead.status}, not open"
    graph = _lone_graph(bead) if lone else load_around(bead.project_id, [bead.id], with_children=True)
    reasons = [r for r in graph.not_ready_reasons(bead.id, now()) if r.startswith(_CLAIM_BLOCKING)]
    return f"{bead.ref} cannot be claimed: " + "; ".join(reasons) if reasons else None


#: The next step after a claim the rule refuses (blocked, deferred, epic, closed).
NOT_CLAIMABLE_HINT = ("pick other work with 'wire ready' "
                      "('wire ready --explain ID' says what a bead waits for)")
