"""The project's bead graph and the one definition of "ready".

A `Graph` is loaded from SQL in four queries (repos, beads, dependencies, claims) and answers
ready, explain, blocked, epic and ancestry questions in memory; every caller uses it, so there
is exactly one implementation of the rule in DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store import db
from store.models import Bead, Claim, Dependency, Repo

#: Dependency types that block their dependent until the target is closed.
BLOCKING_TYPES = frozenset({"blocks", "conditional-blocks", "waits-for"})
PARENT_TYPE = "parent-child"
#: Statuses that resolve a blocker (and end a child's membership of its open epic).
DONE_STATUSES = frozenset({"closed", "tombstone"})
#: Bead types that are machinery, never work to take.
INTERNAL_TYPES = frozenset({"message", "molecule", "gate", "event", "agent", "role", "rig", "convoy",
                            "merge-request"})


@dataclass
class Node:
    pk: int
    repo_id: int
    ref: str
    status: str
    issue_type: str
    priority: int
    created_ts: float
    defer_ts: float | None
    title: str


@dataclass
class Graph:
    repos: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (canonical, name)
    nodes: dict[int, Node] = field(default_factory=dict)
    by_ref: dict[tuple[int, str], int] = field(default_factory=dict)
    by_bare_ref: dict[str, list[int]] = field(default_factory=dict)
    #: pk -> blocking targets: (resolved pk or None when unknown, written reference)
    blockers: dict[int, list[tuple[int | None, str]]] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)
    dependents: dict[int, list[int]] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)

    # -- resolution ------------------------------------------------------------------------
    def repo_id_for(self, written: str) -> int | None:
        """A repo of the project by name or canonical origin."""
        for repo_id, (canonical, name) in self.repos.items():
            if written in (canonical, name):
                return repo_id
        return None

    def resolve(self, repo_id: int, target_repo: str, target_ref: str) -> int | None:
        """The pk a dependency points at: own repo first, then a unique match in the project."""
        if target_repo:
            other = self.repo_id_for(target_repo)
            return None if other is None else self.by_ref.get((other, target_ref))
        found = self.by_ref.get((repo_id, target_ref))
        if found is None and len(self.by_bare_ref.get(target_ref, ())) == 1:
            found = self.by_bare_ref[target_ref][0]
        return found

    def qualified(self, pk: int) -> str:
        node = self.nodes[pk]
        return f"{self.repos[node.repo_id][1]}:{node.ref}"

    # -- the rule --------------------------------------------------------------------------
    def active_blockers(self, pk: int) -> list[tuple[int | None, str]]:
        """Blocking dependencies of `pk` whose target is unknown or not done."""
        return [(t, w) for t, w in self.blockers.get(pk, ())
                if t is None or self.nodes[t].status not in DONE_STATUSES]

    def open_children(self, pk: int) -> list[int]:
        return [c for c in self.children.get(pk, ()) if self.nodes[c].status not in DONE_STATUSES]

    def not_ready_reasons(self, pk: int, now: float) -> list[str]:
        """Why `pk` is not ready; empty means ready."""
        node, reasons = self.nodes[pk], []
        if node.status != "open":
            reasons.append(f"status is {node.status}, not open")
        if pk in self.claimed:
            reasons.append("claimed")
        if node.defer_ts is not None and node.defer_ts > now:
            reasons.append("deferred into the future")
        if node.issue_type in INTERNAL_TYPES:
            reasons.append(f"type {node.issue_type} is internal, not work")
        for target, written in self.active_blockers(pk):
            state = "unknown to the server" if target is None else self.nodes[target].status
            reasons.append(f"blocked by {written} ({state})")
        chain = self._blocked_ancestor(pk)
        if chain is not None:
            reasons.append(f"parent {self.qualified(chain)} is blocked")
        if kids := self.open_children(pk):
            reasons.append(f"epic with {len(kids)} open child(ren)")
        return reasons

    def _blocked_ancestor(self, pk: int) -> int | None:
        seen, current = {pk}, self.parent.get(pk)
        while current is not None and current not in seen:
            if self.active_blockers(current):
                return current
            seen.add(current)
            current = self.parent.get(current)
        return None

    def is_ready(self, pk: int, now: float) -> bool:
        return not self.not_ready_reasons(pk, now)

    def ready(self, now: float) -> list[int]:
        """Ready pks, priority first (0 = most urgent), then newest."""
        found = [pk for pk in self.nodes if self.nodes[pk].status == "open" and self.is_ready(pk, now)]
        return sorted(found, key=lambda pk: (self.nodes[pk].priority, -self.nodes[pk].created_ts,
                                             self.nodes[pk].ref))

    def top_ancestor(self, pk: int) -> int | None:
        """The epic a bead belongs to: its top ancestor through parent-child (None at the top)."""
        seen, current, top = {pk}, self.parent.get(pk), None
        while current is not None and current not in seen:
            seen.add(current)
            top, current = current, self.parent.get(current)
        return top

    def reaches(self, start: int, goal: int) -> bool:
        """True when `start` depends on `goal` through blocking or parent edges (cycle check)."""
        stack, seen = [start], set()
        while stack:
            pk = stack.pop()
            if pk == goal:
                return True
            if pk in seen:
                continue
            seen.add(pk)
            stack.extend(t for t, _ in self.blockers.get(pk, ()) if t is not None)
            if pk in self.parent:
                stack.append(self.parent[pk])
        return False


def load_graph(project_id: int, live_only: bool = False) -> Graph:
    """Everything the rule needs about one project, in four queries.

    `live_only` (for the ready list) leaves out done beads no dependency names: they can be neither
    ready nor a reason another bead is not. Done beads pile up as a project lives (closed work is
    never deleted), so this keeps `ready` proportional to the open work; a done bead that some
    dependency names (by ref, in any repo) is still loaded, so blockers and parents resolve as before.
    """
    g = Graph()
    for repo_id, canonical, name in Repo.select(Repo.id, Repo.canonical, Repo.name).where(
            Repo.project == project_id).tuples():
        g.repos[repo_id] = (canonical, name)
    columns = (Bead.id, Bead.repo, Bead.ref, Bead.status, Bead.issue_type, Bead.priority,
               Bead.created_ts, Bead.defer_ts, Bead.title)
    wanted = Bead.project == project_id
    if live_only:
        named = Dependency.select(Dependency.target_ref).where(Dependency.project == project_id)
        wanted &= Bead.status.not_in(DONE_STATUSES) | Bead.ref.in_(named)
    # raw rows: peewee's per-value conversion costs more than the query itself at 10,000 beads
    for row in _raw(Bead.select(*columns).where(wanted)):
        node = Node(*row)
        g.nodes[node.pk] = node
        g.by_ref[(node.repo_id, node.ref)] = node.pk
        g.by_bare_ref.setdefault(node.ref, []).append(node.pk)
    deps = Dependency.select(Dependency.bead, Dependency.target_repo, Dependency.target_ref,
                             Dependency.type).where(Dependency.project == project_id)
    for pk, target_repo, target_ref, dep_type in _raw(deps):
        _add_edge(g, pk, target_repo, target_ref, dep_type)
    g.claimed = {pk for (pk,) in Claim.select(Claim.bead).where(Claim.project == project_id).tuples()}
    return g


def _raw(query: object) -> list[tuple]:
    """A select's rows as the driver returns them (ints, floats, strings: no conversion needed)."""
    return list(db.database.execute(query).fetchall())


def _add_edge(g: Graph, pk: int, target_repo: str, target_ref: str, dep_type: str) -> None:
    if pk not in g.nodes:
        return
    target = g.resolve(g.nodes[pk].repo_id, target_repo, target_ref)
    written = f"{target_repo}:{target_ref}" if target_repo else target_ref
    if dep_type in BLOCKING_TYPES:
        g.blockers.setdefault(pk, []).append((target, written))
        if target is not None:
            g.dependents.setdefault(target, []).append(pk)
    elif dep_type == PARENT_TYPE and target is not None and target != pk:
        g.parent[pk] = target
        g.children.setdefault(target, []).append(pk)


#: Deepest parent chain the neighbourhood loader follows (real trackers nest 2-4 levels).
MAX_ANCESTRY = 32


def load_around(project_id: int, pks: list[int], with_children: bool = False) -> Graph:
    """A partial graph holding `pks`, their blockers, their ancestors (with theirs) and, optionally,
    their children: enough for the rule on those beads without loading the whole project."""
    g = Graph()
    for repo_id, canonical, name in Repo.select(Repo.id, Repo.canonical, Repo.name).where(
            Repo.project == project_id).tuples():
        g.repos[repo_id] = (canonical, name)
    frontier, expanded = _add_nodes(g, Bead.id.in_(pks)), set()
    for _ in range(MAX_ANCESTRY):
        if not frontier:
            break
        expanded.update(frontier)
        edges = list(Dependency.select(Dependency.bead, Dependency.target_repo, Dependency.target_ref,
                                       Dependency.type).where(Dependency.bead.in_(frontier)).tuples())
        refs = {ref for _, _, ref, kind in edges if kind in BLOCKING_TYPES or kind == PARENT_TYPE}
        if refs:
            _add_nodes(g, (Bead.project == project_id) & Bead.ref.in_(refs))
        for edge in edges:
            _add_edge(g, *edge)
        frontier = [g.parent[pk] for pk in frontier if pk in g.parent and g.parent[pk] not in expanded]
    if with_children:
        _load_children(g, project_id, pks)
    g.claimed = {pk for (pk,) in Claim.select(Claim.bead).where(Claim.bead.in_(list(g.nodes))).tuples()}
    return g


def _add_nodes(g: Graph, where: object) -> list[int]:
    columns = (Bead.id, Bead.repo, Bead.ref, Bead.status, Bead.issue_type, Bead.priority,
               Bead.created_ts, Bead.defer_ts, Bead.title)
    added = []
    for row in Bead.select(*columns).where(where).tuples():
        if row[0] not in g.nodes:
            node = Node(*row)
            g.nodes[node.pk] = node
            g.by_ref[(node.repo_id, node.ref)] = node.pk
            g.by_bare_ref.setdefault(node.ref, []).append(node.pk)
            added.append(node.pk)
    return added


def _load_children(g: Graph, project_id: int, pks: list[int]) -> None:
    refs = {g.nodes[pk].ref for pk in pks if pk in g.nodes}
    rows = list(Dependency.select(Dependency.bead, Dependency.target_repo, Dependency.target_ref,
                                  Dependency.type).where(Dependency.project == project_id,
                                                         Dependency.type == PARENT_TYPE,
                                                         Dependency.target_ref.in_(refs)).tuples())
    _add_nodes(g, Bead.id.in_([row[0] for row in rows]))
    for row in rows:
        if row[0] not in g.parent:
            _add_edge(g, *row)
