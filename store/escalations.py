"""Escalations: an agent asks a human, with its context attached; a human answers.

Raising one commits the row, a `escalation.created` event for the dashboards and, when the project
has a webhook, a post to it, in one transaction. The answer reaches the agent as a notice in its
mailbox (its banner). `sweep()` re-announces a pending escalation once, at `REMIND_AT` of its life,
and expires it when its time is up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from peewee import JOIN, ModelSelect

from store import Store, db, outbox, reservations, webhooks
from store.beadviews import ABSENT
from store.errors import AlreadyAnswered, EscalationNotFound, Unavailable
from store.messages import notify
from store.models import Bead, Claim, Delivery, Escalation, Message, Project, Repo, Workspace
from store.unit import UnitOfWork
from store.util import iso, now

SEVERITIES = ("low", "normal", "high", "critical")
STATUSES = ("pending", "answered", "expired")
#: Seconds an escalation waits for a human before it expires.
DEFAULT_TTL = 4 * 3600
#: Longest lifetime an escalation may ask for (a long weekend), and the shortest.
MAX_TTL = 72 * 3600
MIN_TTL = 60
#: Fraction of its life after which a pending escalation is announced a second time (once).
REMIND_AT = 0.75
MAX_SITUATION = 16 * 1024
MAX_RESPONSE = 16 * 1024
MAX_OPTIONS = 10
#: Messages (mail and chat, sent or received) attached to an escalation, and characters of each body.
CONTEXT_MESSAGES = 10
CONTEXT_BODY = 300
#: `git status --porcelain` lines kept in the context.
MAX_GIT_LINES = 200
#: Characters of the situation a webhook post carries.
WEBHOOK_SITUATION = 600


@dataclass
class EscalationView:
    """An escalation as the API shows it (web/schemas/escalations.py); `context` is ABSENT in lists."""

    id: int
    from_: str  # the asking agent's alias (`from` is a keyword)
    role: str
    human: str
    subject: str
    situation: str
    options: list[str]
    severity: str
    status: str
    response: str
    note: str
    responder: str
    created_at: str | None  # the times are never None but util.iso's type says they may be
    remind_at: str | None
    expires_at: str | None
    reannounced_at: str | None
    answered_at: str | None
    expired_at: str | None
    context: Any = ABSENT


# -- raising ------------------------------------------------------------------------------------

def create(st: Store, project: Project, ws: Workspace, subject: str, situation: str, options: list[str],
           severity: str = "normal", ttl: int = DEFAULT_TTL,
           local: dict[str, Any] | None = None) -> tuple[EscalationView, list[int]]:
    """Raise an escalation; returns it and the ids of the webhook posts to send after commit.

    `local` is what only the agent's machine knows: `branch`, `git_status` (porcelain lines).
    """
    ts = now()
    ttl = max(MIN_TTL, min(int(ttl), MAX_TTL))
    context = gather_context(st, project, ws, local or {})
    with db.transaction() as uow:
        esc = Escalation.create(project=project.id, workspace=ws.id, subject=subject, situation=situation,
                                options=json.dumps(options[:MAX_OPTIONS]), severity=severity,
                                context=json.dumps(context), created_ts=ts, remind_ts=ts + REMIND_AT * ttl,
                                expires_ts=ts + ttl)
        outbox.record(uow, project.id, "escalation.created", _event(esc, ws), workspace_id=ws.id)
        hook = webhooks.enqueue(project.id, "escalation.created", announcement(project, esc, ws), esc.id)
    return escalation_view(esc, ws), [hook] if hook else []


def gather_context(st: Store, project: Project, ws: Workspace, local: dict[str, Any]) -> dict[str, Any]:
    """What a human needs to answer without asking back: who, where, holding what, talking to whom."""
    lines = [str(line) for line in local.get("git_status") or []][:MAX_GIT_LINES]
    return {
        "workspace": {"alias": ws.alias, "role": ws.role, "human": ws.human, "hostname": ws.hostname,
                      "path": ws.path, "repo": Repo.get_by_id(ws.repo_id).canonical},
        "branch": local.get("branch") or _presence_branch(st, project, ws),
        "git_status": {"summary": git_summary(lines), "files": lines,
                       "more": int(local.get("git_status_more") or 0)},
        "claims": _claims_of(ws),
        "reservations": _reservations_of(st, ws),
        "recent_messages": _recent_messages(ws),
    }


def git_summary(lines: list[str]) -> dict[str, int]:
    """Counts by kind of `git status --porcelain` lines (`XY path`)."""
    counts = {"modified": 0, "added": 0, "deleted": 0, "renamed": 0, "untracked": 0, "conflicted": 0}
    for line in lines:
        code = line[:2]
        if code == "??":
            kind = "untracked"
        elif "U" in code or code in ("AA", "DD"):
            kind = "conflicted"
        elif "R" in code or "C" in code:
            kind = "renamed"
        elif "A" in code:
            kind = "added"
        elif "D" in code:
            kind = "deleted"
        else:
            kind = "modified"
        counts[kind] += 1
    return {k: v for k, v in counts.items() if v}


def _presence_branch(st: Store, project: Project, ws: Workspace) -> str:
    """The branch the agent's last heartbeat reported ("" when Redis cannot say)."""
    try:
        online = st.redis.presence(project.id, now() - st.settings.presence_ttl)
    except Unavailable:
        return ""
    return str(online.get(ws.id, (0.0, {}))[1].get("branch", ""))


def _claims_of(ws: Workspace) -> list[dict[str, Any]]:
    rows = Claim.select(Claim, Bead).join(Bead).where(Claim.workspace == ws.id).order_by(Claim.claimed_ts)
    return [{"bead": c.bead.ref, "title": c.bead.title[:200], "status": c.bead.status,
             "since": iso(c.claimed_ts)} for c in rows]


def _reservations_of(st: Store, ws: Workspace) -> list[dict[str, Any]]:
    """The workspace's live file reservations in its repo; `[]` when they cannot be read.

    Reservations live in Redis only: an escalation must go out even when they are unavailable.
    """
    try:
        return [asdict(r) for r in reservations.held(st, ws, mine=True)]
    except Unavailable:
        return []


def _recent_messages(ws: Workspace) -> list[dict[str, Any]]:
    """The last mail and chat the agent sent or received, newest first, bodies cut short."""
    received = Delivery.select(Delivery.message).where(Delivery.recipient == ws.id)
    rows = list(Message.select(Message, Workspace.alias)
                .join(Workspace, JOIN.LEFT_OUTER, on=(Message.sender == Workspace.id), attr="author")
                .where(Message.project == ws.project_id, Message.kind.in_(("mail", "chat")),
                       (Message.sender == ws.id) | Message.id.in_(received))
                .order_by(Message.id.desc()).limit(CONTEXT_MESSAGES))
    to: dict[int, list[str]] = {}
    for message_id, alias in (Delivery.select(Delivery.message, Workspace.alias).join(Workspace)
                              .where(Delivery.message.in_([m.id for m in rows])).tuples()):
        to.setdefault(message_id, []).append(alias)
    return [{"id": m.id, "kind": m.kind, "from": _author(m),
             "to": to.get(m.id, []), "subject": m.subject[:200], "body": _cut(m.body, CONTEXT_BODY),
             "created_at": iso(m.created_ts)} for m in rows]


def _author(message: Message) -> str | None:
    """The sender's alias from the Workspace the join above put on `author` (no model declares it)."""
    author: Workspace | None = getattr(message, "author", None)
    return author.alias if author else None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- reading ------------------------------------------------------------------------------------

def _visible(project: Project, ws: Workspace | None) -> ModelSelect[Escalation]:
    """Escalations the caller may see: a human (project key) or a coordinator all, an agent its own."""
    query = (Escalation.select(Escalation, Workspace).join(Workspace)
             .where(Escalation.project == project.id))
    if ws is not None and ws.role != "coordinator":
        query = query.where(Escalation.workspace == ws.id)
    return query


def list_escalations(project: Project, ws: Workspace | None, status: str | None = None, mine: bool = False,
                     limit: int = 50) -> list[EscalationView]:
    """Newest first, without the (large) context."""
    query = _visible(project, ws)
    if status:
        query = query.where(Escalation.status == status)
    if mine and ws is not None:
        query = query.where(Escalation.workspace == ws.id)
    rows = query.order_by(Escalation.id.desc()).limit(limit)
    return [escalation_view(e, e.workspace, full=False) for e in rows]


def get_escalation(project: Project, ws: Workspace | None, escalation_id: int) -> EscalationView:
    """One escalation with its context.

    Raises:
        EscalationNotFound: no such id in the project, or the caller may not see it.
    """
    esc = _visible(project, ws).where(Escalation.id == escalation_id).first()
    if esc is None:
        raise EscalationNotFound(f"no escalation {escalation_id} in this project")
    return escalation_view(esc, esc.workspace)


def escalation_view(esc: Escalation, ws: Workspace, full: bool = True) -> EscalationView:
    """The escalation asked by `ws`; with `full`, its whole situation and its context."""
    return EscalationView(
        esc.id, ws.alias, ws.role, ws.human, esc.subject, esc.situation if full else _cut(esc.situation, 200),
        json.loads(esc.options), esc.severity, esc.status, esc.response, esc.note, esc.responder,
        iso(esc.created_ts), iso(esc.remind_ts), iso(esc.expires_ts), iso(esc.reminded_ts),
        iso(esc.answered_ts), iso(esc.expired_ts), json.loads(esc.context) if full else ABSENT)


# -- answering ----------------------------------------------------------------------------------

def respond(project: Project, escalation_id: int, response: str, note: str = "",
            by: str = "") -> EscalationView:
    """A human's answer; it lands in the agent's mailbox. An expired escalation may still be answered.

    Raises:
        EscalationNotFound: no such id in the project.
        AlreadyAnswered: someone answered it first.
    """
    with db.transaction() as uow:
        esc = _visible(project, None).where(Escalation.id == escalation_id).first()
        if esc is None:
            raise EscalationNotFound(f"no escalation {escalation_id} in this project")
        # the conditional update makes the first of two racing answers win on every backend
        won = (Escalation.update(status="answered", response=response, note=note, responder=by,
                                 answered_ts=now())
               .where(Escalation.id == esc.id, Escalation.status != "answered").execute())
        if not won:
            esc = Escalation.get_by_id(esc.id)
            raise AlreadyAnswered(f"escalation {esc.id} was answered already by {esc.responder or 'a human'}",
                                  response=esc.response, answered_at=iso(esc.answered_ts))
        late = esc.status == "expired"
        esc = Escalation.get_by_id(esc.id)
        outbox.record(uow, project.id, "escalation.answered", {**_event(esc, esc.workspace), "late": late},
                      workspace_id=esc.workspace_id)
        who = f" by {by}" if by else ""
        text = f"escalation #{esc.id} answered{who}: {response}" + (f" (note: {note})" if note else "")
        notify(uow, project.id, esc.workspace_id, text,
               {"event": "escalation.answered", "escalation": esc.id, "subject": esc.subject,
                "response": response, "note": note, "by": by, "late": late})
    return escalation_view(esc, esc.workspace)


# -- the sweep ----------------------------------------------------------------------------------

def sweep(at: float | None = None) -> dict[str, int]:
    """Expire pending escalations whose time is up; re-announce (once) those past `REMIND_AT` of it.

    Idempotent and safe with several sweepers: each change is a conditional update in its own
    transaction, and only the sweeper whose update wins records the event and the post.
    """
    ts = at or now()
    done = {"reannounced": 0, "expired": 0}
    due = (Escalation.select(Escalation.id)
           .where(Escalation.status == "pending", Escalation.remind_ts <= ts,
                  Escalation.reminded_ts.is_null() | (Escalation.expires_ts <= ts))
           .order_by(Escalation.id))
    for (escalation_id,) in list(due.tuples()):  # read before writing: see store/messages.rebuild_mailboxes
        with db.transaction() as uow:
            esc = Escalation.select(Escalation, Workspace, Project).join(Workspace).switch(Escalation).join(
                Project).where(Escalation.id == escalation_id).first()
            if esc is None:
                continue
            if esc.expires_ts <= ts:
                done["expired"] += _expire(uow, esc, ts)
            else:
                done["reannounced"] += _reannounce(uow, esc, ts)
    return done


def _expire(uow: UnitOfWork, esc: Escalation, ts: float) -> int:
    if not Escalation.update(status="expired", expired_ts=ts).where(
            Escalation.id == esc.id, Escalation.status == "pending").execute():
        return 0
    outbox.record(uow, esc.project_id, "escalation.expired",
                  {**_event(esc, esc.workspace), "status": "expired"}, workspace_id=esc.workspace_id)
    notify(uow, esc.project_id, esc.workspace_id,
           f"escalation #{esc.id} expired unanswered: take the safest reversible option, say so on the "
           f"bead, or escalate again",
           {"event": "escalation.expired", "escalation": esc.id, "subject": esc.subject})
    return 1


def _reannounce(uow: UnitOfWork, esc: Escalation, ts: float) -> int:
    if not Escalation.update(reminded_ts=ts).where(Escalation.id == esc.id, Escalation.status == "pending",
                                                   Escalation.reminded_ts.is_null()).execute():
        return 0
    outbox.record(uow, esc.project_id, "escalation.reannounced", _event(esc, esc.workspace),
                  workspace_id=esc.workspace_id)
    webhooks.enqueue(esc.project_id, "escalation.reannounced",
                     announcement(esc.project, esc, esc.workspace, reminder=True, at=ts), esc.id)
    return 1


# -- announcements ------------------------------------------------------------------------------

def _event(esc: Escalation, ws: Workspace) -> dict[str, Any]:
    """The event on the project stream: enough for a dashboard row (it fetches the rest)."""
    return {"escalation": esc.id, "alias": ws.alias, "subject": esc.subject, "severity": esc.severity,
            "status": esc.status, "expires_at": iso(esc.expires_ts)}


def announcement(project: Project, esc: Escalation, ws: Workspace, reminder: bool = False,
                 at: float | None = None) -> str:
    """The text of a webhook post (Slack mrkdwn; agent-written text escaped so it cannot @-mention)."""
    who = f"{ws.alias} ({ws.human})" if ws.human else ws.alias
    left = _span(esc.expires_ts - (at or now()))
    head = (f"[{project.slug}] REMINDER: escalation #{esc.id} ({esc.severity}) from {who} is unanswered "
            f"and expires in {left}" if reminder else
            f"[{project.slug}] escalation #{esc.id} ({esc.severity}) from {who}")
    lines = [_slack(head), f"*{_slack(esc.subject)}*", _slack(_cut(esc.situation, WEBHOOK_SITUATION))]
    options = json.loads(esc.options)
    if options:
        lines.append("Options: " + "; ".join(f"{i}. {_slack(o)}" for i, o in enumerate(options, 1)))
    lines.append(f"Answer: `wire respond {esc.id} \"...\"` with the project key"
                 + ("" if reminder else f" (expires in {left})"))
    return "\n".join(lines)


def _slack(text: str) -> str:
    """Escape what Slack mrkdwn treats as markup: `<!channel>`, `<@U123>`, links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _span(seconds: float) -> str:
    """`3h 30m`, `45m`, `now`."""
    minutes = max(int(seconds // 60), 0)
    if minutes == 0:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if part)
