"""The dashboard's pages: Team, Work (board, graph, a bead), Chat, Mail, Escalations, Activity, Policy,
the overview of a person's projects, and adding an agent.

Each page loads its query arguments, asks store/dashboard.py (or store/dashboard_work.py) for its
data, turns events into words (web/activity_text.py) and pictures into positions (web/graph_svg.py),
and renders its template. The forms that change things are in web/dashboard_actions.py.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from store import acting, dashboard, dashboard_work, humans, joinkeys
from store.beads import STATUSES
from store.errors import NotFound
from store.escalations import MAX_RESPONSE, respond
from store.humans import require_role
from store.joinkeys import JoinKeyMade
from web.activity_text import event_row
from web.common import acting_human, load_args, store
from web.dashboard_base import THREAD, PageArgs, actor_name, bp, can, render, viewer
from web.graph_svg import layout
from web.idempotency import idempotent
from web.schemas import escalations as escalation_schemas
from web.schemas.beads import bead as bead_schema


class TeamArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    status = fields.Str(load_default="", validate=validate.OneOf(("", *dashboard.PRESENCE_STATES)))
    role = fields.Str(load_default="", validate=validate.Length(max=64))
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))


class WorkArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))
    priority = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=0, max=4))
    holder = fields.Str(load_default="", validate=validate.Length(max=64))
    type = fields.Str(load_default="", validate=validate.Length(max=64))
    more = fields.Str(load_default="", validate=validate.OneOf(("", *dashboard_work.COLUMNS)))


class MailArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))


class ActivityArgs(PageArgs):
    group = fields.Str(load_default="", validate=validate.OneOf(("", *dashboard.ACTIVITY_GROUPS)))
    alias = fields.Str(load_default="", validate=validate.Length(max=64))


class GraphArgs(PageArgs):
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))


team_args, work_args, mail_args = TeamArgs(), WorkArgs(), MailArgs()
activity_args, graph_args = ActivityArgs(), GraphArgs()


@bp.get("/")
def home() -> ResponseReturnValue:
    return redirect(url_for("dashboard.team"))


@bp.get("/overview")
def overview() -> ResponseReturnValue:
    """Every project of the person's login: agents online, claims held, escalations pending."""
    person = acting_human()
    members = humans.memberships(person) if person is not None else []
    rows = dashboard.overview(store(), [p for p, _ in members] or [g.project])
    return render("overview.html", "overview", rows=rows)


@bp.get("/team")
def team() -> ResponseReturnValue:
    a = load_args(team_args)
    f = dashboard.Filters(q=a["q"], status=a["status"], role=a["role"], repo=a["repo"], page=a["page"])
    return render("team.html", "team", team=dashboard.team(store(), g.project, f), f=f)


# -- work ----------------------------------------------------------------------------------------

@bp.get("/work")
def work() -> ResponseReturnValue:
    a = load_args(work_args)
    f = dashboard_work.BoardFilters(q=a["q"], repo=a["repo"], priority=a["priority"], holder=a["holder"],
                                    issue_type=a["type"], more=a["more"])
    return render("work.html", "work", board=dashboard_work.board(g.project, f), f=f,
                  columns=dashboard_work.COLUMNS, repos=dashboard.repo_names(g.project.id))


@bp.get("/work/graph")
def graph() -> ResponseReturnValue:
    a = load_args(graph_args)
    return render("graph.html", "graph", pic=layout(dashboard_work.repo_picture(g.project, a["repo"])),
                  repos=dashboard.repo_names(g.project.id), repo=a["repo"])


@bp.get("/work/bead/<int:pk>")
def bead(pk: int) -> ResponseReturnValue:
    b = dashboard_work.bead_page(store(), g.project, pk)
    b["bead"] = {**bead_schema.dump(b["bead"]), **b.pop("git")}  # as GET /v1/beads/<ref> shows it
    b.update(history=[event_row(e) for e in b["history"]], picture=layout(b["picture"]))
    agents = dashboard.agent_aliases(g.project.id) if can("lead") else []
    return render("bead.html", "bead", b=b, statuses=STATUSES, agents=agents)


# -- talk ----------------------------------------------------------------------------------------

@bp.get("/chat")
def chat() -> ResponseReturnValue:
    return render("chat.html", "chat", chats=dashboard.conversations(store(), g.project, viewer()))


@bp.get("/chat/<thread>")
def conversation(thread: str) -> ResponseReturnValue:
    if not THREAD.match(thread):
        raise NotFound("no such conversation")
    me = acting.find_human(g.project, actor_name()) if g.dash["access"] == "human" else None
    c = dashboard.conversation(store(), g.project, thread, viewer())
    return render("conversation.html", "conversation", c=c, thread=thread,
                  reply_to=acting.other_in(g.project, me, thread))


@bp.get("/mail")
def mail() -> ResponseReturnValue:
    a = load_args(mail_args)
    return render("mail.html", "mail", m=dashboard.mail(g.project, a["page"], a["q"], viewer()), q=a["q"])


# -- escalations, activity, policy -----------------------------------------------------------------

@bp.get("/escalations")
def escalations() -> ResponseReturnValue:
    return render("escalations.html", "escalations", e=_escalations(viewer()))


@bp.post("/escalations/<int:escalation_id>/answer")
@idempotent
def answer(escalation_id: int) -> ResponseReturnValue:
    """A human's answer: an option button or free text; the agent's banner shows it on its next call."""
    person = require_role(acting_human(), "lead")
    text = (request.form.get("response") or request.form.get("text") or "").strip()
    if not text or len(text) > MAX_RESPONSE:
        return render("escalations.html", "escalations", e=_escalations(None),
                      message="Write an answer (or pick an option) first."), 422
    note = (request.form.get("note") or "").strip()[:4000]
    respond(g.project, escalation_id, text, note, person.name)
    return redirect(url_for("dashboard.escalations"), 303)


def _escalations(seen_by: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """The escalations page's lists, as the API shows an escalation (the template reads `from`)."""
    shown = dashboard.escalations(g.project, seen_by)
    return {part: escalation_schemas.escalations.dump(rows) for part, rows in shown.items()}


@bp.get("/activity")
def activity() -> ResponseReturnValue:
    a = load_args(activity_args)
    feed = dashboard.activity(store(), g.project, a["group"], a["alias"], viewer())
    feed["events"] = [event_row(e) for e in feed["events"]]
    return render("activity.html", "activity", feed=feed, a=a)


@bp.get("/policy")
def policy() -> ResponseReturnValue:
    return render("policy.html", "policy", p=dashboard.policy(g.project))


# -- adding an agent -------------------------------------------------------------------------------

@bp.get("/agents/add")
def add_agent() -> ResponseReturnValue:
    """The text a human pastes to a new agent; a join key for it comes from the button (a POST)."""
    return render("add_agent.html", "add_agent", paste=_paste_text(None), made=None)


@bp.post("/agents/add")
@idempotent
def add_agent_post() -> ResponseReturnValue:
    """A fresh single-use join key, shown once inside the paste-to-your-agent text."""
    if g.dash["access"] != "human":
        abort(403, "this session can only read: log in with the project key (or a link minted with it) "
                   "to make join keys")
    made = joinkeys.create(g.project, f"dashboard ({g.dash.get('by') or 'human'})")
    return render("add_agent.html", "add_agent", paste=_paste_text(made), made=made)


def _paste_text(made: JoinKeyMade | None) -> str:
    """What the new agent reads: where the guide is, the project, its join key (autoescaped in the page)."""
    url = request.url_root.rstrip("/")
    key = made.join_key if made else "<join-key: press \"Make a join key\" first>"
    until = f" (single use, valid until {(made.expires_at or '')[:16].replace('T', ' ')} UTC)" if made else ""
    return (f"Join the beadwire project \"{g.project.slug}\" as one of its coding agents.\n"
            f"Read {url}/llms.txt and follow it step by step.\n"
            f"Project: {g.project.slug}\n"
            f"Join key{until}: {key}\n"
            "Ask me first for your role and your name, and whether to add worktrees for more agents.")
