"""The dashboard's side of the store: logins and sessions (Redis), and the page queries (SQL + Redis).

Logins: a one-time link token or the project key opens a session. Both link and session records
live in Redis under the project's hash tag (every web process sees them; nothing in process memory),
addressed by the SHA-256 of a `<project id>.<secret>` value, so the secret itself is never stored.
A session carries its access level (`human`: may answer escalations; `viewer`: reads only), its
CSRF token, and its creation time (absolute lifetime); the Redis TTL is the idle timeout.

Page queries read one page of rows at a time so a project with 1,000 workspaces and 10,000 beads
stays fast (bench/bench_dashboard.py measures them). Everything returned is plain data; agent text is
escaped by the templates, never here.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from store import Store, db, humans, policies
from store.claims import stale_limit
from store.errors import BeadNotFound, NotFound, Unauthorized
from store.humans import Person, key_person
from store.graph import BLOCKING_TYPES, DONE_STATUSES, Graph, load_graph
from store.models import (
    Bead,
    Claim,
    Delivery,
    Dependency,
    Escalation,
    Event,
    Message,
    Project,
    Repo,
    Workspace,
)
from store.util import PROJECT_KEY_PREFIX, hash_secret, iso, now

#: Seconds a login link works (once).
DEFAULT_LINK_TTL = 600
#: Seconds of inactivity after which a session ends, and its longest life whatever the activity.
DEFAULT_SESSION_IDLE = 8 * 3600
DEFAULT_SESSION_MAX = 7 * 24 * 3600
#: A workspace is "online" while its last call is this recent, "idle" until the presence TTL.
DEFAULT_IDLE_AFTER = 120
#: Rows per page of the team and mail lists; cards per board column (more on demand).
TEAM_PAGE = 100
MAIL_PAGE = 50
BOARD_COLUMN = 50
BOARD_COLUMN_MORE = 500
#: Activity rows shown, and stream entries scanned to find them when filtering.
ACTIVITY_ROWS = 100
ACTIVITY_SCAN = 5000
#: Most beads drawn in a dependency picture.
GRAPH_NODES = 60
REPO_GRAPH_NODES = 150
PRESENCE_STATES = ("online", "idle", "offline", "stale")


# -- logins and sessions ------------------------------------------------------------------------

def _split(value: str) -> tuple[int, str] | None:
    """(project id, digest) of a `<project id>.<secret>` token, None when malformed."""
    head, _, secret = (value or "").partition(".")
    if not head.isdigit() or len(secret) < 20 or len(value) > 200:
        return None
    return int(head), hash_secret(value)


def mint_link(st: Store, project: Project, ws: Workspace | None, person: Person | None = None) -> dict[str, Any]:
    """A one-time login link token for `project`: `human` access when minted by a person (`ws` None:
    the project key, or a personal token whose session is that person's), else `viewer` access scoped
    to what workspace `ws` may read (`viewer_of`)."""
    token = f"{project.id}.{secrets.token_urlsafe(32)}"
    access = "human" if ws is None else "viewer"
    human_id = person.human_id if person is not None else None
    by = (person.name if person is not None else "project key") if ws is None else ws.alias
    record = {"project": project.id, "access": access, "by": by, "human": human_id,
              "viewer": None if ws is None else viewer_of(ws), "key": key_mark(project)}
    st.redis.put_secret(st.redis.keys.login_key(project.id, hash_secret(token)), record, DEFAULT_LINK_TTL)
    return {"token": token, "path": f"/login/{token}", "access": access, "project": project.slug,
            "expires_at": iso(now() + DEFAULT_LINK_TTL)}


def check_link(st: Store, token: str) -> dict[str, Any]:
    """A login link's record while it is live, without using it (opening the link only shows a button:
    a chat app's link preview must not burn it).

    Raises:
        Unauthorized: unknown, used or expired link.
    """
    return _live_link(st, token, use=False)


def redeem_link(st: Store, token: str) -> tuple[str, dict[str, Any]]:
    """Use a login link (it works once); returns the new session's cookie value and record.

    Raises:
        Unauthorized: unknown, used or expired link.
    """
    record = _live_link(st, token, use=True)
    return open_session(st, record["project"], record["access"], record.get("by", ""), record.get("viewer"),
                        record.get("human"))


def _live_link(st: Store, token: str, use: bool) -> dict[str, Any]:
    parts = _split(token)
    key = st.redis.keys.login_key(*parts) if parts else ""
    record = st.redis.read_secret(key, use) if parts else None
    if record is None or record.get("project") != parts[0]:  # type: ignore[index]
        raise Unauthorized("this login link is unknown, used or expired: run `wire dashboard` for a new one")
    project = Project.get_or_none(Project.id == record["project"])
    if project is not None and record.get("human") is not None:
        humans.live_person(record["human"])  # a person's link: their removal ends it, a key rotation does not
        return record
    if project is None or record.get("key") != key_mark(project):
        # a rotation ends every link and session made before it (sessions: `project_of`)
        raise Unauthorized("the project key was rotated since this link was made: run `wire dashboard` again")
    return record


def key_mark(project: Project) -> str:
    """What links and sessions remember of the project key they were made under (a hash prefix)."""
    return project.key_hash[:16]


def login_with_key(st: Store, key: str) -> tuple[str, dict[str, Any]]:
    """Open a human session with the project key.

    Raises:
        Unauthorized: not a project key, or an unknown one.
    """
    from store.workspaces import authenticate_key

    if not key.strip().startswith(PROJECT_KEY_PREFIX):
        raise Unauthorized("that is not a project key (bw_pk_...)")
    project = authenticate_key(st, key.strip())
    return open_session(st, project.id, "human", "project key", None)


def open_person_session(st: Store, person: Person) -> tuple[str, dict[str, Any]]:
    """A human session of a person (an invite redeemed in the browser, or their login link)."""
    return open_session(st, person.project_id, "human", person.name, None, person.human_id)


def open_session(st: Store, project_id: int, access: str, by: str,
                 viewer: dict[str, Any] | None, human_id: int | None = None) -> tuple[str, dict[str, Any]]:
    cookie = f"{project_id}.{secrets.token_urlsafe(32)}"
    if access != "human" and not viewer:
        raise Unauthorized("a read-only session needs the workspace it reads as")
    project = Project.get_by_id(project_id)
    record = {"project": project_id, "access": "human" if access == "human" else "viewer", "by": by,
              "viewer": None if access == "human" else viewer, "csrf": secrets.token_urlsafe(24),
              "created": now(), "key": key_mark(project), "human": human_id if access == "human" else None,
              "as": human_id if access == "human" else None}
    st.redis.put_secret(st.redis.keys.session_key(project_id, hash_secret(cookie)), record, DEFAULT_SESSION_IDLE)
    return cookie, record


def switch_project(st: Store, cookie: str, record: dict[str, Any], slug: str) -> Project:
    """Make a person's session show another project of theirs (same identity: `humans.memberships`).

    Raises:
        NotFound: the person belongs to no project `slug` (or the session is no person's).
    """
    person = session_actor(record)[1]
    for project, member in humans.memberships(person) if person is not None and person.human_id else []:
        if project.slug == slug:
            parts = _split(cookie)
            st.redis.put_secret(st.redis.keys.session_key(*parts), {**record, "as": member.human_id},  # type: ignore[misc]
                                DEFAULT_SESSION_IDLE)
            return project
    raise NotFound(f"you belong to no project {slug}")


def session(st: Store, cookie: str | None) -> dict[str, Any] | None:
    """The live session a cookie names (its idle timeout renewed), else None."""
    parts = _split(cookie or "")
    if parts is None:
        return None
    key = st.redis.keys.session_key(*parts)
    record = st.redis.touch_secret(key, DEFAULT_SESSION_IDLE)
    if record is None or record.get("project") != parts[0]:
        return None
    if now() - float(record.get("created", 0)) > DEFAULT_SESSION_MAX:
        st.redis.drop_secret(key)
        return None
    return record


def close_session(st: Store, cookie: str | None) -> None:
    parts = _split(cookie or "")
    if parts is not None:
        st.redis.drop_secret(st.redis.keys.session_key(*parts))


# -- who may read what ---------------------------------------------------------------------------

def viewer_of(ws: Workspace) -> dict[str, Any]:
    """A read-only reader acting as workspace `ws`: it sees what that workspace's token may read
    through the API (team, beads, policy, activity), but of private things only its own: mail and chat
    it sent or received, and its own escalations (all of them for a coordinator, as the API does)."""
    return {"ws": ws.id, "alias": ws.alias, "role": ws.role}


def redact(kind: str, data: dict[str, Any], viewer: dict[str, Any] | None) -> dict[str, Any]:
    """An event as `viewer` may see it (None: a human, who sees everything)."""
    if viewer is None:
        return data
    alias = viewer["alias"]
    if kind in ("mail", "chat", "notice") and alias != data.get("from") and alias not in (data.get("to") or []):
        return {k: data[k] for k in ("id", "kind", "from", "to", "thread", "created_at", "ts") if k in data} | {
            "redacted": True}
    if kind.startswith("escalation.") and viewer["role"] != "coordinator" and data.get("alias") != alias:
        return {k: data[k] for k in ("escalation", "alias", "status", "ts") if k in data} | {"redacted": True}
    return data


def _own_messages(viewer: dict[str, Any] | None):
    """The SQL condition "a message this viewer sent or received" (None: no restriction)."""
    if viewer is None:
        return True
    received = Delivery.select(Delivery.message).where(Delivery.recipient == viewer["ws"])
    return (Message.sender == viewer["ws"]) | Message.id.in_(received)


def project_of(record: dict[str, Any]) -> Project:
    """The project a session shows, while the session still stands for it (`session_actor`)."""
    return session_actor(record)[0]


def session_actor(record: dict[str, Any]) -> tuple[Project, Person | None]:
    """The project a session shows and the person acting through it (None: a workspace's read-only
    session), while the session still stands for them.

    A person's session stands while the person is not removed (a key rotation leaves it alone); it
    shows the project of the membership it switched to (`switch_project`), which must be live and the
    same person's too. A project key session stands until the key is rotated.

    Raises:
        Unauthorized: the project is gone, its key was rotated since the login (every project key
            session ends with it), the person was removed, or the workspace a read-only session reads
            as was revoked.
    """
    if record.get("human") is not None:
        home = humans.live_person(record["human"], "session")
        current = home if record.get("as") in (None, home.human_id) else humans.live_person(record["as"], "session")
        if current.identity != home.identity:
            raise Unauthorized("this session no longer stands for that project: log in again")
        return Project.get_by_id(current.project_id), current
    project = _key_or_viewer_project(record)
    return project, key_person(project, "session") if record.get("access") == "human" else None


def _key_or_viewer_project(record: dict[str, Any]) -> Project:
    project = Project.get_or_none(Project.id == record["project"])
    if project is None:
        raise Unauthorized("this project no longer exists")
    if record.get("key") != key_mark(project):
        raise Unauthorized("the project key was rotated since you logged in: log in again")
    viewer = record.get("viewer")
    if viewer and not Workspace.select().where(Workspace.id == viewer["ws"], Workspace.revoked == False).exists():
        raise Unauthorized("the workspace this session reads as was revoked")
    return project


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
    from store.acting import HUMAN_ROLE

    query = (Workspace.select(Workspace.alias).where(Workspace.project == project_id, Workspace.revoked == False,
                                                     Workspace.role != HUMAN_ROLE)
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
    return {"rows": page, "total": len(rows), "pages": pages, "counts": {s: counts.get(s, 0) for s in PRESENCE_STATES},
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
    from store.gitstate import claim_git, idle_minutes_setting, idle_since, idle_view

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
    return {pk: name for pk, name in Repo.select(Repo.id, Repo.name).where(Repo.project == project_id).tuples()}


# -- work -----------------------------------------------------------------------------------------

@dataclass
class BoardFilters:
    q: str = ""
    repo: int = 0
    priority: int | None = None
    holder: str = ""
    issue_type: str = ""
    more: str = ""


COLUMNS = ("ready", "in_progress", "blocked", "closed")


def board(project: Project, f: BoardFilters) -> dict[str, Any]:
    """Beads as a board: ready, in progress, blocked, recently closed; filtered server-side, each
    column cut at `BOARD_COLUMN` cards (`more` names one column to show up to `BOARD_COLUMN_MORE`)."""
    ts, graph = now(), load_graph(project.id)
    holders = dict(Claim.select(Claim.bead, Workspace.alias).join(Workspace)
                   .where(Claim.project == project.id).tuples())
    columns: dict[str, list[int]] = {c: [] for c in COLUMNS}
    columns["ready"] = graph.ready(ts)
    ready = set(columns["ready"])
    for pk, node in graph.nodes.items():
        if node.status in DONE_STATUSES or pk in ready:
            continue
        if pk in holders or node.status in ("in_progress", "hooked"):
            columns["in_progress"].append(pk)
        elif node.status == "blocked" or (node.status == "open" and _is_blocked(graph, pk)):
            columns["blocked"].append(pk)
    columns["closed"] = _recently_closed(project.id, f)
    out: dict[str, Any] = {"columns": {}, "repos": {pk: name for pk, (_, name) in graph.repos.items()}}
    for name in COLUMNS:
        pks = [pk for pk in columns[name] if _board_match(graph, pk, holders, f)]
        if name in ("in_progress", "blocked"):
            pks.sort(key=lambda pk: (graph.nodes[pk].priority, -graph.nodes[pk].created_ts))
        limit = BOARD_COLUMN_MORE if f.more == name else BOARD_COLUMN
        out["columns"][name] = {"total": len(pks), "cards": [_card(graph, pk, holders) for pk in pks[:limit]]}
    return out


def _is_blocked(graph: Graph, pk: int) -> bool:
    return bool(graph.active_blockers(pk)) or graph._blocked_ancestor(pk) is not None


def _recently_closed(project_id: int, f: BoardFilters) -> list[int]:
    query = (Bead.select(Bead.id).where(Bead.project == project_id, Bead.status == "closed")
             .order_by(Bead.updated_ts.desc()).limit(BOARD_COLUMN_MORE))
    return [pk for (pk,) in query.tuples()]


def _board_match(graph: Graph, pk: int, holders: dict[int, str], f: BoardFilters) -> bool:
    node = graph.nodes.get(pk)
    if node is None:
        return False
    q = f.q.lower()
    return ((not f.repo or node.repo_id == f.repo) and (f.priority is None or node.priority <= f.priority)
            and (not f.holder or holders.get(pk) == f.holder) and (not f.issue_type or node.issue_type == f.issue_type)
            and (not q or q in node.title.lower() or q in node.ref.lower()))


def _card(graph: Graph, pk: int, holders: dict[int, str]) -> dict[str, Any]:
    node = graph.nodes[pk]
    return {"pk": pk, "ref": node.ref, "title": node.title, "priority": node.priority, "status": node.status,
            "type": node.issue_type, "repo": graph.repos[node.repo_id][1], "holder": holders.get(pk)}


def bead_page(st: Store, project: Project, pk: int) -> dict[str, Any]:
    """One bead: fields, comments, dependencies both ways, holder, history, and its dependency picture.

    Raises:
        BeadNotFound: no such bead in this project (another project's id included).
    """
    from store.beads import bead_full_json

    bead = Bead.get_or_none(Bead.id == pk, Bead.project == project.id)
    if bead is None:
        raise BeadNotFound(f"no bead {pk} in this project")
    graph = _around(project.id, bead)
    record = bead_full_json(bead)
    history = (Event.select().where(Event.project == project.id, Event.bead_ref == bead.ref)
               .order_by(Event.id.desc()).limit(100))
    from store.gitstate import bead_git

    record.update(bead_git(st, bead))  # recorded commits, and the holder's live git state
    return {"bead": record, "pk": pk, "repo": graph.repos[bead.repo_id][1],
            "reasons": graph.not_ready_reasons(pk, now()),
            "blockers": [_link(graph, t, w) for t, w in graph.blockers.get(pk, ())],
            "dependents": [_link(graph, d, graph.qualified(d)) for d in graph.dependents.get(pk, ())],
            "children": [_link(graph, c, graph.qualified(c)) for c in graph.children.get(pk, ())],
            "parent": _link(graph, graph.parent[pk], graph.qualified(graph.parent[pk])) if pk in graph.parent else None,
            "history": [_event_row(e.kind, json.loads(e.data), e.created_ts) for e in history],
            "picture": neighbourhood_picture(graph, pk)}


def _around(project_id: int, bead: Bead) -> Graph:
    """The part of the graph a bead page shows: the bead's blockers, ancestors and children (what the
    ready rule needs, via `load_around`) plus what it blocks, two steps out; never the whole project."""
    from store.graph import _add_edge, _add_nodes, load_around

    graph, frontier = load_around(project_id, [bead.id], with_children=True), [bead.id]
    for _ in range(2):
        refs = {graph.nodes[pk].ref for pk in frontier}
        rows = list(Dependency.select(Dependency.bead, Dependency.target_repo, Dependency.target_ref,
                                      Dependency.type)
                    .where(Dependency.project == project_id, Dependency.target_ref.in_(refs),
                           Dependency.type.in_(sorted(BLOCKING_TYPES))).tuples())
        frontier = _add_nodes(graph, Bead.id.in_(sorted({row[0] for row in rows})))
        known = {(pk, written) for pk, targets in graph.blockers.items() for _, written in targets}
        for row in rows:
            if (row[0], f"{row[1]}:{row[2]}" if row[1] else row[2]) not in known:
                _add_edge(graph, *row)
    return graph


def _link(graph: Graph, pk: int | None, written: str) -> dict[str, Any]:
    node = graph.nodes.get(pk) if pk is not None else None
    return {"pk": pk, "ref": written, "title": node.title if node else "(unknown to the server)",
            "status": node.status if node else "unknown"}


# -- dependency pictures (server-side SVG: a layered layout, no JS) ------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y = 190, 44, 70, 18


def neighbourhood_picture(graph: Graph, center: int, depth: int = 2) -> dict[str, Any]:
    """The beads within `depth` blocking/parent steps of `center`: blockers to the left, dependents right."""
    layer = {center: 0}
    frontier = [center]
    for _ in range(depth):
        nxt = []
        for pk in frontier:
            for other, step in _neighbours(graph, pk):
                if other not in layer and len(layer) < GRAPH_NODES:
                    layer[other] = layer[pk] + step
                    nxt.append(other)
        frontier = nxt
    return _picture(graph, layer, center)


def _neighbours(graph: Graph, pk: int) -> list[tuple[int, int]]:
    """(bead, layer step): what blocks `pk` or is its parent sits left (-1), what it blocks right (+1)."""
    out = [(t, -1) for t, _ in graph.blockers.get(pk, ()) if t is not None]
    out += [(d, 1) for d in graph.dependents.get(pk, ())]
    if pk in graph.parent:
        out.append((graph.parent[pk], -1))
    out += [(c, 1) for c in graph.children.get(pk, ())]
    return out


def repo_picture(project: Project, repo_id: int = 0) -> dict[str, Any]:
    """Open beads that block or are blocked (a repo's or the project's), layered by longest blocker chain."""
    graph = load_graph(project.id)
    involved = set()
    for pk, targets in graph.blockers.items():
        live = [t for t, _ in targets if t is not None and graph.nodes[t].status not in DONE_STATUSES]
        if live and graph.nodes[pk].status not in DONE_STATUSES:
            involved.add(pk)
            involved.update(live)
    if repo_id:
        involved = {pk for pk in involved if graph.nodes[pk].repo_id == repo_id}
    chosen = sorted(involved, key=lambda pk: (graph.nodes[pk].priority, pk))[:REPO_GRAPH_NODES]
    layer = {pk: _chain(graph, pk, set(chosen), {}) for pk in chosen}
    return {**_picture(graph, layer, None), "total": len(involved)}


def _chain(graph: Graph, pk: int, within: set[int], memo: dict[int, int], seen: frozenset = frozenset()) -> int:
    """Length of the longest chain of blockers of `pk` inside `within` (cycles cut)."""
    if pk in memo:
        return memo[pk]
    targets = [t for t, _ in graph.blockers.get(pk, ()) if t in within and t not in seen]
    memo[pk] = 1 + max((_chain(graph, t, within, memo, seen | {pk}) for t in targets), default=-1)
    return memo[pk]


def _picture(graph: Graph, layer: dict[int, int], center: int | None) -> dict[str, Any]:
    """Positions for the SVG template: nodes in columns by layer, edges blocker -> dependent."""
    low = min(layer.values(), default=0)
    columns: dict[int, list[int]] = {}
    for pk in sorted(layer, key=lambda p: (graph.nodes[p].priority, graph.nodes[p].ref)):
        columns.setdefault(layer[pk] - low, []).append(pk)
    pos, nodes = {}, []
    for col, pks in columns.items():
        for row, pk in enumerate(pks):
            x, y = 10 + col * (NODE_W + GAP_X), 10 + row * (NODE_H + GAP_Y)
            pos[pk] = (x, y)
            node = graph.nodes[pk]
            nodes.append({"pk": pk, "x": x, "y": y, "ref": node.ref, "title": _cut(node.title, 26),
                          "status": node.status, "center": pk == center})
    edges = []
    for pk in layer:
        for target, _ in graph.blockers.get(pk, ()):
            if target in pos:
                edges.append(_edge(pos[target], pos[pk], "blocks"))
        if graph.parent.get(pk) in pos:
            edges.append(_edge(pos[graph.parent[pk]], pos[pk], "parent"))
    width = 20 + len(columns) * (NODE_W + GAP_X)
    height = 20 + max((len(p) for p in columns.values()), default=0) * (NODE_H + GAP_Y)
    return {"nodes": nodes, "edges": edges, "width": width, "height": height, "w": NODE_W, "h": NODE_H}


def _edge(a: tuple[int, int], b: tuple[int, int], kind: str) -> dict[str, Any]:
    return {"x1": a[0] + NODE_W, "y1": a[1] + NODE_H // 2, "x2": b[0], "y2": b[1] + NODE_H // 2, "kind": kind}


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- chat and mail ----------------------------------------------------------------------------------

def conversations(st: Store, project: Project, viewer: dict[str, Any] | None = None,
                  limit: int = 50) -> dict[str, Any]:
    """Chat conversations, most recent first, and who is blocked waiting on whom right now."""
    from peewee import fn

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
    return {"conversations": out, "waiting": waiting(st, project, {i for r in rows for i in _pair(r[0])}, aliases)}


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
    query = Message.select().where(Message.project == project.id, Message.kind != "chat", _own_messages(viewer))
    if q:
        query = query.where(Message.subject.contains(q) | Message.body.contains(q) | Message.thread.contains(q))
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
            to.setdefault(message_id, []).append({"alias": aliases.get(recipient, "?"), "read": acked is not None})
    return {"messages": [{**_message(m, aliases), "to": to.get(m.id, [])} for m in rows], "total": total,
            "pages": pages, "page": page}


def _aliases(project_id: int) -> dict[int, str]:
    return dict(Workspace.select(Workspace.id, Workspace.alias).where(Workspace.project == project_id).tuples())


def _message(m: Message, aliases: dict[int, str]) -> dict[str, Any]:
    from store.messages import sender_name

    sender = aliases.get(m.sender_id, "server") if m.sender_id else (sender_name(m) or "server")
    return {"id": m.id, "kind": m.kind, "from": sender,
            "subject": m.subject, "body": m.body, "thread": m.thread, "priority": m.priority,
            "at": iso(m.created_ts)}


# -- escalations ----------------------------------------------------------------------------------

def escalations(project: Project, viewer: dict[str, Any] | None = None, limit: int = 50) -> dict[str, Any]:
    """Pending escalations (oldest first, with their context) above the latest answered or expired."""
    from store.escalations import escalation_json

    base = Escalation.select(Escalation, Workspace).join(Workspace).where(Escalation.project == project.id)
    if viewer is not None and viewer["role"] != "coordinator":
        base = base.where(Escalation.workspace == viewer["ws"])
    pending = [escalation_json(e, e.workspace) for e in
               base.where(Escalation.status == "pending").order_by(Escalation.id).limit(limit)]
    done = [escalation_json(e, e.workspace, full=False) for e in
            base.where(Escalation.status != "pending").order_by(Escalation.id.desc()).limit(limit)]
    return {"pending": pending, "done": done}


# -- activity -------------------------------------------------------------------------------------

#: Filter groups of the activity feed: group -> event kind prefixes.
ACTIVITY_GROUPS = {
    "claims": ("claim.",), "beads": ("bead.", "beads."), "mail": ("mail", "notice"), "chat": ("chat",),
    "reservations": ("reservation.",), "escalations": ("escalation.",), "presence": ("presence.", "workspace."),
    "policy": ("policy.",),
}


def activity(st: Store, project: Project, group: str = "", alias: str = "",
             viewer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The newest events of the project stream, optionally of one group or one workspace."""
    prefixes = ACTIVITY_GROUPS.get(group, ())
    rows, before, scanned = [], "+", 0
    while len(rows) < ACTIVITY_ROWS and scanned < ACTIVITY_SCAN:
        batch = st.redis.recent_events(project.id, 500, before)
        scanned += len(batch)
        for sid, fields in batch:
            kind, data = fields.get("kind", ""), redact(fields.get("kind", ""), _data(fields), viewer)
            if prefixes and not kind.startswith(prefixes):
                continue
            if alias and alias not in (data.get("alias"), data.get("from"), data.get("previous")):
                continue
            rows.append({"sid": sid, **_event_row(kind, data, _stream_ts(sid, data))})
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


#: Counts of a sync's Activity line, in this order.
SYNC_COUNTS = ("created", "updated", "tombstoned", "pulled", "conflicts")


def _event_row(kind: str, data: dict[str, Any], ts: float) -> dict[str, Any]:
    """A feed line: kind, who, what (plain text; the template escapes it), when; `mass` marks a sync
    that changed many beads at once (the page makes it stand out)."""
    who = str(data.get("alias") or data.get("from") or "")
    return {"kind": kind, "who": who, "what": _summary(kind, data), "at": iso(ts), "bead": data.get("bead"),
            "mass": bool(data.get("mass"))}


def _summary(kind: str, d: dict[str, Any]) -> str:
    bead, title = d.get("bead", ""), d.get("title", "")
    if kind == "claim.created":
        return f"claimed {bead} {title}".strip()
    if kind in ("claim.jumped", "claim.taken_stale"):
        return f"took {bead} from {d.get('previous', '?')}: {d.get('reason', '')}"
    if kind == "claim.released":  # a person freeing someone else's claim names the holder and why
        held = f" (held by {d['holder']}): {d.get('reason', '')}" if d.get("holder") else ""
        return f"released {bead}{held}"
    if kind == "claim.stale":
        return f"claim on {bead} went stale"
    if kind == "claim.idle":
        return f"idle with a claim on {', '.join(map(str, d.get('beads') or []))}"
    if kind == "bead.closed":
        return f"closed {bead}" + (f": {d['reason']}" if d.get("reason") else "")
    if d.get("redacted"):
        return f"{kind} (not yours to read)"
    if kind in ("mail", "notice", "chat"):
        to = ", ".join(d.get("to") or [])
        text = d.get("subject") or d.get("body") or ""
        return f"{kind} to {to}: {_cut(str(text), 160)}"
    if kind.startswith("reservation."):
        pats = d.get("patterns") or [d.get("pattern", "")]
        verb = {"created": "reserved"}.get(kind.split(".", 1)[1], kind.split(".", 1)[1])
        return f"{verb} {', '.join(str(p) for p in pats)}" + (" (modified files)" if d.get("auto") else "")
    if kind == "workspace.joined":
        return f"joined as {d.get('role', '?')} in {d.get('repo', '?')}"
    if kind.startswith("escalation."):
        return f"escalation #{d.get('escalation')} {kind.split('.', 1)[1]}: {d.get('subject', '')}"
    if kind.startswith("presence."):
        return kind.split(".", 1)[1] + (f" on {d['host']}" if d.get("host") else "")
    if kind == "policy.activated":
        return f"policy version {d.get('version')} activated"
    if kind == "beads.synced":
        counts = ", ".join(f"{d.get(k, 0)} {k}" for k in SYNC_COUNTS if d.get(k))
        head = "MASS CHANGE: " if d.get("mass") else ""
        return f"{head}sync #{d.get('sync', '?')} of {d.get('repo', '?')}: {counts or 'no change'}"
    if kind == "beads.sync_undone":
        return f"undid sync #{d.get('undo_of', '?')} (as #{d.get('sync', '?')}): {d.get('restored', 0)} beads put back"
    if kind == "bead.synced":
        return f"sync #{d.get('sync', '?')} {d.get('action', 'changed')} {bead}" + (
            f": {', '.join(map(str, d.get('fields') or []))}" if d.get("fields") else "")
    if kind == "bead.sync_conflict":
        return (f"sync #{d.get('sync', '?')}: {d.get('reason', '')}; kept the {d.get('kept', '?')}'s "
                f"{_cut(str(d.get('value')), 80)}, not {_cut(str(d.get('lost')), 200)}")
    if kind == "bead.sync_undone":
        return f"put back as before sync #{d.get('sync', '?')}"
    return f"{kind.split('.', 1)[-1]} {bead} {title}".strip()


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
