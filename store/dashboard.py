"""The dashboard's page queries (SQL + Redis): Team, Chat, Mail, Escalations, Activity, Policy and
the overview; the Work pages are in store/dashboard_work.py, logins and sessions in store/sessions.py.

Page queries read one page of rows at a time so a project with 1,000 workspaces and 10,000 beads
stays fast (bench/bench_dashboard.py measures them). Everything returned is plain data (the wording of
an event is web/activity_text.py's); agent text is escaped by the templates, never here.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from peewee import fn

from store import Store, db, policies
from store.acting import HUMAN_ROLE
from store.claims import stale_limit
from store.errors import NotFound
from store.escalations import escalation_view
from store.gitstate import claim_git, idle_minutes_setting, idle_since, idle_view
from store.messages import sender_name
from store.models import Bead, Claim, Delivery, Escalation, Message, Project, Repo, Workspace
from store.sessions import redact
from store.util import iso, now

#: A workspace is "online" while its last call is this recent, "idle" until the presence TTL.
DEFAULT_IDLE_AFTER = 120
#: Rows per page of the team and mail lists.
TEAM_PAGE = 100
MAIL_PAGE = 50
#: Activity rows shown, and stream entries scanned to find them when filtering.
ACTIVITY_ROWS = 100
ACTIVITY_SCAN = 5000
PRESENCE_STATES = ("online", "idle", "offline", "stale")


@dataclass
class EventRecord:
    """One event of the project: its kind, its data (what its writer recorded) and when; `sid` is
    its id in the Redis stream (the activity feed's rows), empty for one read from SQL."""

    kind: str
    data: dict[str, Any]
    ts: float
    sid: str = ""


def _own_messages(viewer: dict[str, Any] | None) -> Any:
    """The SQL condition "a message this viewer sent or received" (None: no restriction)."""
    if viewer is None:
        return True
    received = Delivery.select(Delivery.message).where(Delivery.recipient == viewer["ws"])
    return (Message.sender == viewer["ws"]) | Message.id.in_(received)


# -- team -----------------------------------------------------------------------------------------

@dataclass
class Filters:
    """What a list page was asked to show (validated by the view)."""

    q: str = ""
    status: str = ""
    role: str = ""
    repo: int = 0
    page: int = 1


def _presence_state(age: float, presence_ttl: int, stale_after: int) -> str:
    if age <= DEFAULT_IDLE_AFTER:
        return "online"
    if age <= presence_ttl:
        return "idle"
    return "stale" if age > stale_after else "offline"


def _members(project_id: int) -> list[tuple]:
    columns = (Workspace.id, Workspace.alias, Workspace.role, Workspace.human, Workspace.hostname,
               Workspace.last_seen_ts, Workspace.repo, Workspace.paused_by, Workspace.paused_reason)
    query = Workspace.select(*columns).where(Workspace.project == project_id, Workspace.revoked == False)
    # raw tuples: model instances cost more than the query at 1,000 members
    return list(db.database.execute(query).fetchall())


def agent_aliases(project_id: int) -> list[str]:
    """The agents a bead can be assigned to (the bead page's select): not revoked, not a person's
    acting workspace (store/acting.py), by alias."""
    query = (Workspace.select(Workspace.alias)
             .where(Workspace.project == project_id, Workspace.revoked == False, Workspace.role != HUMAN_ROLE)
             .order_by(Workspace.alias).limit(1000))
    return [alias for (alias,) in db.database.execute(query).fetchall()]


def team(st: Store, project: Project, f: Filters) -> dict[str, Any]:
    """One page of workspaces with presence, claims and reservations, plus counts per state."""
    ts, repos = now(), repo_names(project.id)
    beats = st.redis.presence(project.id, 0)
    stale_after = stale_limit(st, project)
    rows = []
    for ws_id, alias, role, human, host, last_seen, repo_id, paused_by, paused_reason in _members(project.id):
        beat, fields = beats.get(ws_id, (None, {}))
        seen = max(beat or 0.0, last_seen)
        rows.append({"id": ws_id, "alias": alias, "role": role, "human": human, "repo_id": repo_id,
                     "repo": repos.get(repo_id, ""), "host": fields.get("host") or host,
                     "branch": fields.get("branch", ""), "last_seen": iso(seen), "seen_ts": seen,
                     "state": _presence_state(ts - seen, st.settings.presence_ttl, stale_after),
                     "beat": beat, "git": fields.get("git"),
                     "paused": {"by": paused_by, "reason": paused_reason} if paused_by else None})
    counts = Counter(r["state"] for r in rows)
    rows = [r for r in rows if _team_match(r, f)]
    rows.sort(key=lambda r: (PRESENCE_STATES.index(r["state"]), r["alias"]))
    page, pages = _page(rows, f.page, TEAM_PAGE)
    _add_claims(page)
    _add_idle(st, project, page, ts)
    _add_reservations(st, project, page, ts)
    return {"rows": page, "total": len(rows), "pages": pages,
            "counts": {s: counts.get(s, 0) for s in PRESENCE_STATES},
            "roles": sorted({r["role"] for r in rows}), "repos": repos}


def _team_match(row: dict[str, Any], f: Filters) -> bool:
    q = f.q.lower()
    return ((not f.status or row["state"] == f.status) and (not f.role or row["role"] == f.role)
            and (not f.repo or row["repo_id"] == f.repo)
            and (not q or q in row["alias"].lower() or q in row["human"].lower()))


def _page(rows: list[Any], page: int, size: int) -> tuple[list[Any], int]:
    pages = max(1, -(-len(rows) // size))
    page = min(max(page, 1), pages)
    return rows[(page - 1) * size: page * size], pages


def _add_claims(rows: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["claims"] = []
    if not by_id:
        return
    query = (Claim.select(Claim.workspace, Claim.stale, Bead.id, Bead.ref, Bead.title).join(Bead)
             .where(Claim.workspace.in_(list(by_id))).order_by(Claim.claimed_ts))
    for ws_id, stale, pk, ref, title in query.tuples():
        by_id[ws_id]["claims"].append({"pk": pk, "ref": ref, "title": title, "stale": bool(stale)})


def _add_idle(st: Store, project: Project, rows: list[dict[str, Any]], ts: float) -> None:
    """`idle_with_claim` of each row (store/gitstate.py) and each claim's git state (branch, ahead)."""
    minutes = idle_minutes_setting(project.id) if any(r["claims"] for r in rows) else 0
    for r in rows:
        online = r["beat"] is not None and ts - r["beat"] <= st.settings.presence_ttl
        since = idle_since({"git": r["git"]}, bool(r["claims"]), r["beat"], ts, minutes) if online else None
        r.update(idle_view(since, ts))
        for c in r["claims"]:
            c["git"] = claim_git(r["git"], c["ref"])


def _add_reservations(st: Store, project: Project, rows: list[dict[str, Any]], ts: float) -> None:
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["reservations"] = []
    for repo_id in {r["repo_id"] for r in rows}:
        for entry in st.redis.reservations(project.id, repo_id, ts):
            if entry["ws"] in by_id:
                by_id[entry["ws"]]["reservations"].append(
                    {"pattern": entry["pattern"], "auto": bool(entry.get("auto")),
                     "seconds_left": max(0, int(entry["expires"] - ts))})


def repo_names(project_id: int) -> dict[int, str]:
    query = Repo.select(Repo.id, Repo.name).where(Repo.project == project_id)
    return dict(query.tuples())

# -- chat and mail ----------------------------------------------------------------------------------

def conversations(st: Store, project: Project, viewer: dict[str, Any] | None = None,
                  limit: int = 50) -> dict[str, Any]:
    """Chat conversations, most recent first, and who is blocked waiting on whom right now."""
    last = (Message.select(Message.thread, fn.MAX(Message.id).alias("last"), fn.COUNT(Message.id).alias("n"))
            .where(Message.project == project.id, Message.kind == "chat", _own_messages(viewer))
            .group_by(Message.thread).order_by(fn.MAX(Message.id).desc()).limit(limit))
    rows = [(thread, last_id, n) for thread, last_id, n in last.tuples()]
    heads = {m.id: m for m in Message.select().where(Message.id.in_([r[1] for r in rows]))} if rows else {}
    aliases = _aliases(project.id)
    out = []
    for thread, last_id, n in rows:
        head = heads[last_id]
        out.append({"thread": thread, "between": [aliases.get(i, "?") for i in _pair(thread)], "count": n,
                    "last": _message(head, aliases), "at": iso(head.created_ts)})
    talking = {i for r in rows for i in _pair(r[0])}
    return {"conversations": out, "waiting": waiting(st, project, talking, aliases)}


def _pair(thread: str) -> list[int]:
    parts = thread.split(":")
    return [int(p) for p in parts[1:] if p.isdigit()]


def waiting(st: Store, project: Project, ws_ids: set[int], aliases: dict[int, str]) -> list[dict[str, Any]]:
    """Who waits on whom (chat `ask` blocked for a reply), for the given workspaces."""
    ts, out = now(), []
    for ws_id in sorted(ws_ids):
        for w in st.redis.waiting_on(project.id, ws_id, ts):
            out.append({"waiter": w.get("alias", "?"), "on": aliases.get(ws_id, "?"),
                        "seconds": int(ts - float(w.get("since", ts)))})
    return out


def conversation(st: Store, project: Project, thread: str, viewer: dict[str, Any] | None = None,
                 limit: int = 200) -> dict[str, Any]:
    """One chat conversation in order (the latest `limit` messages).

    Raises:
        NotFound: no such conversation in this project (or not the viewer's).
    """
    rows = list(Message.select().where(Message.project == project.id, Message.kind == "chat",
                                       Message.thread == thread).order_by(Message.id.desc()).limit(limit))
    if not rows or (viewer is not None and viewer["ws"] not in _pair(thread)):
        raise NotFound(f"no conversation {thread} in this project")
    aliases = _aliases(project.id)
    pair = set(_pair(thread))
    return {"thread": thread, "between": [aliases.get(i, "?") for i in _pair(thread)],
            "messages": [_message(m, aliases) for m in reversed(rows)],
            "waiting": waiting(st, project, pair, aliases)}


def mail(project: Project, page: int, q: str = "", viewer: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mail and notices, newest first, one page, with recipients and whether each has read it."""
    query = Message.select().where(Message.project == project.id, Message.kind != "chat",
                                   _own_messages(viewer))
    if q:
        query = query.where(Message.subject.contains(q) | Message.body.contains(q)
                            | Message.thread.contains(q))
    total = query.count()
    pages = max(1, -(-total // MAIL_PAGE))
    page = min(max(page, 1), pages)
    rows = list(query.order_by(Message.id.desc()).paginate(page, MAIL_PAGE))
    aliases = _aliases(project.id)
    to: dict[int, list[dict[str, Any]]] = {}
    if rows:
        deliveries = Delivery.select(Delivery.message, Delivery.recipient, Delivery.acked_ts).where(
            Delivery.message.in_([m.id for m in rows]))
        for message_id, recipient, acked in deliveries.tuples():
            read = {"alias": aliases.get(recipient, "?"), "read": acked is not None}
            to.setdefault(message_id, []).append(read)
    return {"messages": [{**_message(m, aliases), "to": to.get(m.id, [])} for m in rows], "total": total,
            "pages": pages, "page": page}


def _aliases(project_id: int) -> dict[int, str]:
    query = Workspace.select(Workspace.id, Workspace.alias).where(Workspace.project == project_id)
    return dict(query.tuples())


def _message(m: Message, aliases: dict[int, str]) -> dict[str, Any]:
    sender = aliases.get(m.sender_id, "server") if m.sender_id else (sender_name(m) or "server")
    return {"id": m.id, "kind": m.kind, "from": sender,
            "subject": m.subject, "body": m.body, "thread": m.thread, "priority": m.priority,
            "at": iso(m.created_ts)}


# -- escalations ----------------------------------------------------------------------------------

def escalations(project: Project, viewer: dict[str, Any] | None = None, limit: int = 50) -> dict[str, Any]:
    """Pending escalations (oldest first, with their context) above the latest answered or expired."""
    base = Escalation.select(Escalation, Workspace).join(Workspace).where(Escalation.project == project.id)
    if viewer is not None and viewer["role"] != "coordinator":
        base = base.where(Escalation.workspace == viewer["ws"])
    pending = [escalation_view(e, e.workspace) for e in
               base.where(Escalation.status == "pending").order_by(Escalation.id).limit(limit)]
    done = [escalation_view(e, e.workspace, full=False) for e in
            base.where(Escalation.status != "pending").order_by(Escalation.id.desc()).limit(limit)]
    return {"pending": pending, "done": done}


# -- activity -------------------------------------------------------------------------------------

#: Filter groups of the activity feed: group -> event kind prefixes.
ACTIVITY_GROUPS = {
    "claims": ("claim.",), "beads": ("bead.", "beads."), "mail": ("mail", "notice"), "chat": ("chat",),
    "reservations": ("reservation.",), "escalations": ("escalation.",),
    "presence": ("presence.", "workspace."), "policy": ("policy.",),
}


def activity(st: Store, project: Project, group: str = "", alias: str = "",
             viewer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The newest events of the project stream (`EventRecord`s, newest first, as `viewer` may see
    them), optionally of one group or one workspace."""
    prefixes = ACTIVITY_GROUPS.get(group, ())
    rows: list[EventRecord] = []
    before, scanned = "+", 0
    while len(rows) < ACTIVITY_ROWS and scanned < ACTIVITY_SCAN:
        batch = st.redis.recent_events(project.id, 500, before)
        scanned += len(batch)
        for sid, fields in batch:
            kind, data = fields.get("kind", ""), redact(fields.get("kind", ""), _data(fields), viewer)
            if prefixes and not kind.startswith(prefixes):
                continue
            if alias and alias not in (data.get("alias"), data.get("from"), data.get("previous")):
                continue
            rows.append(EventRecord(kind, data, _stream_ts(sid, data), sid))
        if len(batch) < 500:
            break
        before = batch[-1][0]
    return {"events": rows[:ACTIVITY_ROWS], "groups": list(ACTIVITY_GROUPS)}


def _data(fields: dict[str, str]) -> dict[str, Any]:
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _stream_ts(sid: str, data: dict[str, Any]) -> float:
    if isinstance(data.get("ts"), (int, float)):
        return float(data["ts"])
    head = sid.split("-", 1)[0]
    return int(head) / 1000 if head.isdigit() else 0.0


# -- policy ---------------------------------------------------------------------------------------

def policy(project: Project) -> dict[str, Any]:
    return {"bundle": policies.bundle_view(project), "history": policies.history(project)}


# -- overview (every project of a person's login) ------------------------------------------------

def overview(st: Store, projects: list[Project]) -> list[dict[str, Any]]:
    """Per project: agents online (last call within DEFAULT_IDLE_AFTER), claims held, escalations pending."""
    rows = []
    for project in projects:
        online = st.redis.presence(project.id, now() - DEFAULT_IDLE_AFTER)
        rows.append({"slug": project.slug, "name": project.name, "online": len(online),
                     "claims": Claim.select().where(Claim.project == project.id).count(),
                     "pending": Escalation.select().where(Escalation.project == project.id,
                                                          Escalation.status == "pending").count()})
    return rows


def pending_count(project_id: int) -> int:
    """Escalations waiting for an answer (every page's header shows how many)."""
    return Escalation.select().where(Escalation.project == project_id, Escalation.status == "pending").count()
