"""Claims carry their git state; holders idle with a claim are seen.

While a workspace holds claims, the CLI sends its git state on every call (header `X-Wire-Git`,
validated in web/common.py): branch, head, ahead/behind against the default branch, the commits since
each claim whose messages name the bead, and how long the worktree has been idle. It rides in the
presence hash (Redis, beside branch and host) under `git`, with `active` (when the holder last ran a
command or changed a file, by the server's clock) added here.

Closing a bead records its commits (SQL `bead_commit`, schema 9); `wire show` and the bead page list
them. A sweep tells the coordinators once per idle spell about holders idle past the project's
`idle_claim_minutes` (store/project_settings.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from store import Store, db, outbox, project_settings
from store.messages import notify
from store.models import Bead, BeadCommit, Claim, Project, Workspace
from store.util import iso, now

#: The most commits a header may carry (and a bead records per close).
MAX_COMMITS = 20


# -- presence ---------------------------------------------------------------------------------

def presence_git(git: dict[str, Any] | None, ts: float) -> dict[str, Any] | None:
    """The validated header as stored with presence: `idle` (seconds, client-measured) becomes
    `active` on the server's clock, so holders on skewed machines compare fairly."""
    if git is None:
        return None
    stored = {k: v for k, v in git.items() if k != "idle"}
    stored["active"] = ts - git.get("idle", 0)
    return stored


def claim_git(git: dict[str, Any] | None, ref: str) -> dict[str, Any] | None:
    """What a claim on `ref` shows of its holder's git state: branch, ahead/behind, merged, commits."""
    if not git:
        return None
    ahead = git.get("ahead", 0)
    return {"branch": git.get("branch", ""), "head": git.get("head", ""), "base": git.get("base", ""),
            "ahead": ahead, "behind": git.get("behind", 0), "merged": ahead == 0,
            "commits": [c for c in git.get("commits", []) if c.get("bead") == ref]}


def holder_git(st: Store, project_id: int, workspace_id: int, ref: str) -> dict[str, Any] | None:
    """The live git state of a claim on `ref` held by `workspace_id` (None when it sent none)."""
    return claim_git((st.redis.presence_of(project_id, workspace_id) or {}).get("git"), ref)


# -- commits on a bead ------------------------------------------------------------------------

def record_commits(bead: Bead, git: dict[str, Any] | None) -> int:
    """Record the commits `git` names `bead` in (inside the close's transaction); returns how many.
    A commit already recorded (closed, reopened, closed again) is kept once."""
    if not git:
        return 0
    named = [c for c in git.get("commits", []) if c.get("bead") == bead.ref][:MAX_COMMITS]
    rows = [{"bead": bead.id, "sha": c["sha"], "subject": c.get("subject", ""),
             "branch": git.get("branch", ""), "ts": float(c.get("ts") or now())} for c in named]
    if rows:
        BeadCommit.insert_many(rows).on_conflict_ignore().execute()
    return len(rows)


def commits_of(bead_id: int) -> list[dict[str, Any]]:
    """The commits recorded on a bead, oldest first."""
    rows = BeadCommit.select().where(BeadCommit.bead == bead_id).order_by(BeadCommit.ts, BeadCommit.id)
    return [{"sha": c.sha, "subject": c.subject, "branch": c.branch, "at": iso(c.ts)} for c in rows]


def bead_git(st: Store, bead: Bead) -> dict[str, Any]:
    """`commits` (recorded) and `git` (the holder's live state, while claimed) of one bead."""
    holder = Claim.select(Claim.workspace).where(Claim.bead == bead.id).tuples().first()
    live = holder_git(st, bead.project_id, holder[0], bead.ref) if holder else None
    return {"commits": commits_of(bead.id), "git": live}


# -- idle with a claim ------------------------------------------------------------------------

def idle_minutes_setting(project_id: int) -> int:
    """The project's `idle_claim_minutes` (schema 8)."""
    return int(project_settings.read(project_id).idle_claim_minutes)


def idle_since(info: dict[str, Any] | None, holds_claims: bool, beat: float, ts: float,
               minutes: int) -> float | None:
    """When an online holder's idle spell began, if it has lasted `minutes`; else None. Idle means no
    command run and no file changed: `active` comes from the CLI's header (a long poll is no command)."""
    git = (info or {}).get("git")
    if not holds_claims or not git:
        return None
    active = min(float(git.get("active", beat)), beat)
    return active if ts - active >= minutes * 60 else None


def idle_view(since: float | None, ts: float) -> dict[str, Any]:
    """The `idle` fields of a team member: whether it is idle with a claim, since when, for how long."""
    if since is None:
        return {"idle_with_claim": False}
    return {"idle_with_claim": True, "idle_since": iso(since), "idle_minutes": int((ts - since) // 60)}


def notice_idle_claims(st: Store, ts: float | None = None) -> int:
    """Sweep: tell the coordinators (else the whole team but the holder) once per idle spell that a
    holder sits idle with a claim; a holder active again (or gone) gets a fresh spell. Returns the
    notices sent."""
    ts = now() if ts is None else ts
    sent = 0
    for (project_id,) in list(Project.select(Project.id).tuples()):
        sent += _notice_project(st, project_id, ts)
    return sent


def _notice_project(st: Store, project_id: int, ts: float) -> int:
    online = st.redis.presence(project_id, ts - st.settings.presence_ttl)
    told = st.redis.idle_noticed(project_id)
    holders = _claims_by_holder(project_id)
    minutes = idle_minutes_setting(project_id) if holders else 0
    idle: dict[int, float] = {}
    for ws_id, (beat, info) in online.items():
        since = idle_since(info, ws_id in holders, beat, ts, minutes)
        if since is not None:
            idle[ws_id] = since
    st.redis.clear_idle_noticed(project_id, [ws_id for ws_id in told if ws_id not in idle])
    sent = 0
    for ws_id, since in idle.items():
        if ws_id in told or not st.redis.mark_idle_noticed(project_id, ws_id, since):
            continue  # this spell was told already
        try:
            _tell_idle(project_id, ws_id, holders[ws_id], since, ts)
            sent += 1
        except Exception:
            st.redis.clear_idle_noticed(project_id, [ws_id])  # the next sweep tries again
            raise
    if sent:
        outbox.publish_pending(st)
    return sent


def _claims_by_holder(project_id: int) -> dict[int, list[str]]:
    rows = (Claim.select(Claim.workspace, Bead.ref).join(Bead).where(Claim.project == project_id)
            .order_by(Claim.claimed_ts).tuples())
    out: dict[int, list[str]] = {}
    for ws_id, ref in rows:
        out.setdefault(ws_id, []).append(ref)
    return out


def _tell_idle(project_id: int, ws_id: int, refs: list[str], since: float, ts: float) -> None:
    holder = Workspace.get_by_id(ws_id)
    text = (f"{holder.alias} is idle with a claim on {', '.join(refs)}: no command and no file change "
            f"for {int((ts - since) // 60)} min")
    with db.transaction() as uow:
        outbox.record(uow, project_id, "claim.idle",
                      {"alias": holder.alias, "beads": refs, "since": iso(since)}, workspace_id=ws_id)
        for recipient in _coordinators(project_id, ws_id):
            notify(uow, project_id, recipient, text,
                   {"bead": refs[0], "event": "claim.idle", "holder": holder.alias, "beads": refs})


def _coordinators(project_id: int, holder_id: int) -> Iterable[int]:
    live = Workspace.select(Workspace.id).where(Workspace.project == project_id, Workspace.revoked == False,
                                                Workspace.id != holder_id)
    coordinators = [pk for (pk,) in live.where(Workspace.role == "coordinator").tuples()]
    return coordinators or [pk for (pk,) in live.tuples()]
