"""The dashboard's Work pages as data: the board, one bead's page, and which beads a dependency
picture holds (each with its layer and the edges between them; web/graph_svg.py places them).

Like store/dashboard.py, everything returned is plain data; agent text is escaped by the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store import Store
from store.beadviews import bead_full, bead_history
from store.dashboard import EventRecord
from store.errors import BeadNotFound
from store.gitstate import bead_git
from store.graph import DONE_STATUSES, Graph, load_bead_surroundings, load_graph
from store.models import Bead, Claim, Project, Workspace
from store.util import now

#: Cards per board column (more on demand).
BOARD_COLUMN = 50
BOARD_COLUMN_MORE = 500
#: Most beads drawn in a dependency picture.
GRAPH_NODES = 60
REPO_GRAPH_NODES = 150
#: Events of a bead's history shown on its page.
BEAD_HISTORY = 100
COLUMNS = ("ready", "in_progress", "blocked", "closed")


@dataclass
class BoardFilters:
    q: str = ""
    repo: int = 0
    priority: int | None = None
    holder: str = ""
    issue_type: str = ""
    more: str = ""


@dataclass
class PictureNode:
    pk: int
    ref: str
    title: str
    status: str
    priority: int
    #: the column: blockers and parents lie left of what they hold back
    layer: int


@dataclass
class Picture:
    """The beads of a dependency picture and its edges (from pk, to pk, "blocks" | "parent"), in the
    order they are drawn; `total` counts the beads the picture was cut from (None: not cut)."""

    nodes: list[PictureNode] = field(default_factory=list)
    edges: list[tuple[int, int, str]] = field(default_factory=list)
    center: int | None = None
    total: int | None = None


# -- the board ------------------------------------------------------------------------------------

def board(project: Project, f: BoardFilters) -> dict[str, Any]:
    """Beads as a board: ready, in progress, blocked, recently closed; filtered server-side, each
    column cut at `BOARD_COLUMN` cards (`more` names one column to show up to `BOARD_COLUMN_MORE`)."""
    ts, graph = now(), load_graph(project.id)
    held = Claim.select(Claim.bead, Workspace.alias).join(Workspace).where(Claim.project == project.id)
    holders: dict[int, str] = dict(held.tuples())
    columns: dict[str, list[int]] = {c: [] for c in COLUMNS}
    columns["ready"] = graph.ready(ts)
    ready = set(columns["ready"])
    for pk, node in graph.nodes.items():
        if node.status in DONE_STATUSES or pk in ready:
            continue
        if pk in holders or node.status in ("in_progress", "hooked"):
            columns["in_progress"].append(pk)
        elif node.status == "blocked" or (node.status == "open" and graph.is_blocked(pk)):
            columns["blocked"].append(pk)
    columns["closed"] = _recently_closed(project.id)
    out: dict[str, Any] = {"columns": {}, "repos": {pk: name for pk, (_, name) in graph.repos.items()}}
    for name in COLUMNS:
        pks = [pk for pk in columns[name] if _board_match(graph, pk, holders, f)]
        if name in ("in_progress", "blocked"):
            pks.sort(key=lambda pk: (graph.nodes[pk].priority, -graph.nodes[pk].created_ts))
        limit = BOARD_COLUMN_MORE if f.more == name else BOARD_COLUMN
        out["columns"][name] = {"total": len(pks), "cards": [_card(graph, pk, holders) for pk in pks[:limit]]}
    return out


def _recently_closed(project_id: int) -> list[int]:
    query = (Bead.select(Bead.id).where(Bead.project == project_id, Bead.status == "closed")
             .order_by(Bead.updated_ts.desc()).limit(BOARD_COLUMN_MORE))
    return [pk for (pk,) in query.tuples()]


def _board_match(graph: Graph, pk: int, holders: dict[int, str], f: BoardFilters) -> bool:
    node = graph.nodes.get(pk)
    if node is None:
        return False
    q = f.q.lower()
    return ((not f.repo or node.repo_id == f.repo) and (f.priority is None or node.priority <= f.priority)
            and (not f.holder or holders.get(pk) == f.holder)
            and (not f.issue_type or node.issue_type == f.issue_type)
            and (not q or q in node.title.lower() or q in node.ref.lower()))


def _card(graph: Graph, pk: int, holders: dict[int, str]) -> dict[str, Any]:
    node = graph.nodes[pk]
    return {"pk": pk, "ref": node.ref, "title": node.title, "priority": node.priority, "status": node.status,
            "type": node.issue_type, "repo": graph.repos[node.repo_id][1], "holder": holders.get(pk)}


# -- one bead -------------------------------------------------------------------------------------

def bead_page(st: Store, project: Project, pk: int) -> dict[str, Any]:
    """One bead: fields, comments, dependencies both ways, holder, history (`EventRecord`s, newest
    first), and its dependency picture (`Picture`).

    Raises:
        BeadNotFound: no such bead in this project (another project's id included).
    """
    bead = Bead.get_or_none(Bead.id == pk, Bead.project == project.id)
    if bead is None:
        raise BeadNotFound(f"no bead {pk} in this project")
    graph = load_bead_surroundings(project.id, bead.id)
    record = bead_full(bead)  # the web layer dumps it as the API shows a bead (web/schemas/beads.py)
    history = bead_history(project.id, bead, BEAD_HISTORY)
    parent = graph.parent.get(pk)
    # `git`: recorded commits, and the holder's live git state
    return {"bead": record, "git": bead_git(st, bead), "pk": pk, "repo": graph.repos[bead.repo_id][1],
            "reasons": graph.not_ready_reasons(pk, now()),
            "blockers": [_link(graph, t, w) for t, w in graph.blockers.get(pk, ())],
            "dependents": [_link(graph, d, graph.qualified(d)) for d in graph.dependents.get(pk, ())],
            "children": [_link(graph, c, graph.qualified(c)) for c in graph.children.get(pk, ())],
            "parent": _link(graph, parent, graph.qualified(parent)) if parent is not None else None,
            "history": [EventRecord(e.kind, e.data, e.ts) for e in history],
            "picture": neighbourhood_picture(graph, pk)}


def _link(graph: Graph, pk: int | None, written: str) -> dict[str, Any]:
    node = graph.nodes.get(pk) if pk is not None else None
    return {"pk": pk, "ref": written, "title": node.title if node else "(unknown to the server)",
            "status": node.status if node else "unknown"}


# -- what a dependency picture holds --------------------------------------------------------------

def neighbourhood_picture(graph: Graph, center: int, depth: int = 2) -> Picture:
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


def repo_picture(project: Project, repo_id: int = 0) -> Picture:
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
    picture = _picture(graph, layer, None)
    picture.total = len(involved)
    return picture


def _chain(graph: Graph, pk: int, within: set[int], memo: dict[int, int],
           seen: frozenset[int] = frozenset()) -> int:
    """Length of the longest chain of blockers of `pk` inside `within` (cycles cut)."""
    if pk in memo:
        return memo[pk]
    targets = [t for t, _ in graph.blockers.get(pk, ()) if t in within and t not in seen]
    memo[pk] = 1 + max((_chain(graph, t, within, memo, seen | {pk}) for t in targets), default=-1)
    return memo[pk]


def _picture(graph: Graph, layer: dict[int, int], center: int | None) -> Picture:
    """The chosen beads with their layers, and the edges among them: blocker -> dependent, parent -> child."""
    nodes = [PictureNode(pk, graph.nodes[pk].ref, graph.nodes[pk].title, graph.nodes[pk].status,
                         graph.nodes[pk].priority, layer[pk]) for pk in layer]
    edges = []
    for pk in layer:
        for target, _ in graph.blockers.get(pk, ()):
            if target in layer:
                edges.append((target, pk, "blocks"))
        if graph.parent.get(pk) in layer:
            edges.append((graph.parent[pk], pk, "parent"))
    return Picture(nodes, edges, center)
