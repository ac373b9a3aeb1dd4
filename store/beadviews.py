"""Beads and claims as the API shows them: domain objects, loaded in a fixed number of queries.

The store answers with these; the marshmallow schemas in web/schemas/beads.py dump them, so the
shape of a bead answer is written once, there. A field the answer leaves out when it does not apply
(a bead's `comments` in lists, a claim's `bead` outside the claims list) holds `ABSENT`, which the
schemas skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from store.models import Bead, Claim, Comment, Dependency, Event, Repo, Workspace
from store.util import iso


class _Absent:
    """The answer has no such key: the web schemas skip a field that holds it."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass
class ClaimView:
    """A claim: who holds the bead, since when, whether the holder has gone stale; on the claims
    list and the team view also which bead (`bead`, `repo`, `title`, `epic`) and the holder's `git`."""

    alias: str
    human: str
    since: str | None
    stale: bool
    reason: str
    bead: Any = ABSENT
    repo: Any = ABSENT
    title: Any = ABSENT
    epic: Any = ABSENT
    git: Any = ABSENT


@dataclass
class DepView:
    """A dependency as the beads record has it; `extra`: its other fields (unknown ones included)."""

    extra: dict[str, Any]
    issue_id: str
    depends_on_id: str
    type: str


@dataclass
class CommentView:
    extra: dict[str, Any]
    id: Any  # the synced id: a string, or an integer for older exports
    author: str
    text: str
    created_at: str


@dataclass
class BeadView:
    """The beads record as synced (`extra`: its fields without a column, unknown ones included),
    with its dependencies, its comments (when shown), its repo and its claim."""

    pk: int
    id: str
    title: str
    description: str
    status: str
    priority: int
    issue_type: str
    assignee: str
    labels: list[str]
    extra: dict[str, Any]
    dependencies: list[DepView]
    repo: str
    claim: ClaimView | None
    comments: Any = ABSENT
    #: {"to", "by", "reason"} of a binding assignment (store/steer.py)
    assignment: Any = ABSENT


def plain(view: Any) -> dict[str, Any]:
    """A domain object as a dict, its `ABSENT` fields left out: for answers that no schema dumps yet
    (the team view's claims, store/workspaces.py)."""
    return {name: value for name, value in vars(view).items() if value is not ABSENT}


def claim_view(claim: Claim, ws: Workspace, bead: Bead | None = None, epic: dict[str, Any] | None = None,
               stale: bool | None = None) -> ClaimView:
    """A claim row as the API shows it; with `bead`, naming its bead (and `epic`, its top ancestor)."""
    view = ClaimView(ws.alias, ws.human, iso(claim.claimed_ts), claim.stale if stale is None else stale,
                     claim.reason)
    if bead is not None:
        view.bead, view.repo, view.title, view.epic = bead.ref, bead.repo.canonical, bead.title, epic
    return view


def bead_view(bead: Bead, deps: Iterable[Dependency] = (), comments: Iterable[Comment] | None = None,
              claim: ClaimView | None = None, repo: Repo | None = None,
              canonical: str | None = None) -> BeadView:
    """`canonical`: the bead's repo's, when the caller read it (else `repo`'s, else read)."""
    if canonical is None:
        canonical = (repo or bead.repo).canonical
    view = BeadView(bead.id, bead.ref, bead.title, bead.description, bead.status, bead.priority,
                    bead.issue_type, bead.assignee, json.loads(bead.labels), json.loads(bead.data),
                    [_dep_view(bead, d) for d in deps], canonical, claim)
    if comments is not None:
        view.comments = [comment_view(c) for c in comments]
    if bead.assigned_by and bead.assignee:  # binding (store/steer.py): who gave it to whom, and why
        view.assignment = {"to": bead.assignee, "by": bead.assigned_by, "reason": bead.assign_reason}
    return view


def _dep_view(bead: Bead, dep: Dependency) -> DepView:
    target = f"{dep.target_repo}:{dep.target_ref}" if dep.target_repo else dep.target_ref
    return DepView(json.loads(dep.data), bead.ref, target, dep.type)


def comment_view(comment: Comment) -> CommentView:
    ext: Any = comment.ext_id
    if isinstance(ext, str) and ext.isdigit():
        ext = int(ext)  # older exports use integer comment ids: give them back as they came
    return CommentView(json.loads(comment.data), ext or comment.id, comment.author, comment.text,
                       comment.created_at)


def bead_views(beads: list[Bead], with_comments: bool = False) -> list[BeadView]:
    """Many beads with their deps and claims in a fixed number of queries."""
    if not beads:
        return []
    pks = [b.id for b in beads]
    deps: dict[int, list[Dependency]] = {}
    for dep in Dependency.select().where(Dependency.bead.in_(pks)).order_by(Dependency.id):
        deps.setdefault(dep.bead_id, []).append(dep)
    comments: dict[int, list[Comment]] = {}
    if with_comments:
        for c in Comment.select().where(Comment.bead.in_(pks)).order_by(Comment.id):
            comments.setdefault(c.bead_id, []).append(c)
    claims = {c.bead_id: c for c in Claim.select(Claim, Workspace).join(Workspace).where(Claim.bead.in_(pks))}
    repos = {r.id: r for r in Repo.select().where(Repo.id.in_({b.repo_id for b in beads}))}
    return [bead_view(b, deps.get(b.id, ()), comments.get(b.id, []) if with_comments else None,
                      claim_view(claims[b.id], claims[b.id].workspace) if b.id in claims else None,
                      repos[b.repo_id]) for b in beads]


def bead_full(bead: Bead) -> BeadView:
    """One bead with its comments (`GET /v1/beads/<ref>`)."""
    return bead_views([bead], with_comments=True)[0]


@dataclass
class Change:
    """One entry of a bead's history: who did what (an event's kind and data) and when."""

    id: int
    at: str | None
    who: str
    kind: str
    data: dict[str, Any]
    ts: float  # `at` as epoch seconds (not sent)


#: The newest entries of a bead's history that its page and `GET /v1/beads/<ref>/history` show.
HISTORY_LIMIT = 100


def bead_history(project_id: int, bead: Bead, limit: int = HISTORY_LIMIT) -> list[Change]:
    """The events of a bead (claims, edits, closes, syncs, assignments), newest first."""
    rows = (Event.select().where(Event.project == project_id, Event.bead_ref == bead.ref)
            .order_by(Event.id.desc()).limit(limit))
    changes = []
    for event in rows:
        data = json.loads(event.data)
        who = str(data.get("alias") or data.get("from") or "")
        changes.append(Change(event.id, iso(event.created_ts), who, event.kind, data, event.created_ts))
    return changes


# -- answers of the bead routes -----------------------------------------------------------------

@dataclass
class Claimed:
    claimed: bool
    already_held: bool
    previous: ClaimView | None
    bead: BeadView


@dataclass
class Released:
    released: bool
    bead: BeadView
    #: who held it, when a person released someone's claim
    holder: Any = ABSENT


@dataclass
class Closed:
    bead: BeadView
    unblocked: list[BeadView]
    #: the commits recorded on it (store/gitstate.py `commits_of`)
    commits: list[dict[str, Any]]


@dataclass
class Brief:
    """A bead named by a dependency: `repo` absent (and status "unknown") when it is not known here."""

    id: str
    status: str
    title: str | None
    repo: Any = ABSENT


@dataclass
class Deps:
    id: str
    active_blockers: list[Brief]
    resolved_blockers: list[Brief]
    blocks: list[Brief]
    parent: Brief | None
    children: list[Brief]


@dataclass
class Explained:
    id: str
    repo: str
    ready: bool
    reasons: list[str]


@dataclass
class ReadyWait:
    """`GET /v1/wait-ready`: the bead once ready; on timeout none, and for a named bead `reasons`."""

    ready: bool
    bead: BeadView | None
    reasons: Any = ABSENT
