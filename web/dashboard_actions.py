"""The dashboard's forms: talk (mail, chat), work (beads and claims), agents (revoke) and policies.

Every form is a plain POST that works without JavaScript: CSRF-checked by the dashboard's
`before_request`, permission-checked with `_require`, done through the same store functions the API
uses (so the same validation, and the same events that refresh every open dashboard), then a
redirect back with a one-line message. Bad input re-renders the page with the message and a 4xx.

A person acts through their own workspace (store/acting.py), named by `actor_name()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import g, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from store import access, acting, chat, dashboard, messages, policies, steer
from store import beads as bead_store
from store import claims as claim_store
from store.beads import MAX_TEXT, MAX_TITLE, STATUSES
from store.beadviews import bead_full
from store.errors import BeadwireError, Conflict, NotFound
from store.util import unstorable_text
from web import dashboard_pages as pages
from web.common import actor, store
from web.dashboard_base import FLASH_COOKIE, THREAD, actor_name, bp, plain_page, render, require
from web.idempotency import idempotent
from web.schemas.beads import bead as bead_schema

if TYPE_CHECKING:  # types only: the web layer runs no model queries (store/ does)
    from store.models import Bead, Workspace

#: What an action returns: where to go next, and the one-line message that page shows.
Done = tuple[str, str]
MAX_LABELS = 100


def Text(limit: int, **kw: Any) -> fields.Str:
    """A text field of 1 to `limit` characters."""
    return fields.Str(validate=validate.Length(min=1, max=limit), **kw)


class FormSchema(Schema):
    """A form: unknown fields (the CSRF token, the button) are ignored; text is trimmed."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _trim(self, data: Any, **_: Any) -> Any:
        return {k: v.strip() if isinstance(v, str) and k not in ("body", "description", "markdown") else v
                for k, v in data.items()}


class MailForm(FormSchema):
    to = Text(2000, required=True)
    subject = fields.Str(load_default="", validate=validate.Length(max=300))
    body = Text(messages.MAX_BODY, required=True)
    priority = fields.Str(load_default="normal", validate=validate.OneOf(messages.PRIORITIES))


class ChatForm(FormSchema):
    to = Text(64, required=True)
    body = Text(messages.MAX_BODY, required=True)


class ReplyForm(FormSchema):
    body = Text(messages.MAX_BODY, required=True)


class CreateForm(FormSchema):
    title = Text(MAX_TITLE, required=True)
    description = fields.Str(load_default="", validate=validate.Length(max=MAX_TEXT))
    priority = fields.Int(load_default=2, validate=validate.Range(min=0, max=4))
    issue_type = fields.Str(load_default="task", validate=validate.Length(min=1, max=64))
    labels = fields.Str(load_default="", validate=validate.Length(max=20_000))
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))


class EditForm(FormSchema):
    title = Text(MAX_TITLE, required=True)
    description = fields.Str(load_default="", validate=validate.Length(max=MAX_TEXT))
    priority = fields.Int(required=True, validate=validate.Range(min=0, max=4))
    status = fields.Str(required=True, validate=validate.OneOf(STATUSES))
    labels = fields.Str(load_default="", validate=validate.Length(max=20_000))


class CommentForm(FormSchema):
    text = Text(MAX_TEXT, required=True)


class LinkForm(FormSchema):
    target = Text(520, required=True)


class ReasonForm(FormSchema):
    reason = fields.Str(load_default="", validate=validate.Length(max=2000))


class AssignForm(FormSchema):
    alias = Text(64, required=True)
    reason = fields.Str(load_default="", validate=validate.Length(max=steer.MAX_REASON))


class PolicyForm(FormSchema):
    markdown = Text((policies.MAX_ROLES + 1) * policies.MAX_SECTION, required=True)


class VersionForm(FormSchema):
    version = fields.Int(required=True, validate=validate.Range(min=1, max=2**31 - 1))


# -- the shape of every action -------------------------------------------------------------------

def _form(schema: type[Schema]) -> dict[str, Any]:
    data = request.form.to_dict()
    path = unstorable_text(data)
    if path:
        raise ValidationError({path.split(".", 1)[0]: ["contains a NUL character or an unpaired surrogate"]})
    return schema().load(data)


def _human() -> Workspace:
    """The acting person's workspace (created on their first action)."""
    return acting.human_workspace(g.project, actor_name())


def _act(level: str, action: Callable[[], Done], page: Callable[[], Any]) -> ResponseReturnValue:
    """Check the level, run `action` (returning where to go and what to say), redirect with the message;
    on bad input or a refused change, `page` again with the message and the error's status."""
    require(level)
    try:
        url, text = action()
    except ValidationError as exc:
        return _failed(422, _say(exc.messages), page)
    except BeadwireError as exc:
        return _failed(exc.status_code, exc.message, page)
    response = redirect(url, 303)
    response.set_cookie(FLASH_COOKIE, quote("ok:" + text[:400]), max_age=60, httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/")
    return response


def _failed(status: int, message: str, page: Callable[[], Any]) -> ResponseReturnValue:
    g.flash = ("error", message)
    try:
        return make_response(page(), status)
    except BeadwireError:  # the page itself is gone (a bead of another project): the plain error page
        return plain_page("error.html", status, message=message)


def _say(errors: Any) -> str:
    """marshmallow's {"field": ["msg"]} as one readable line."""
    if isinstance(errors, dict):
        return "; ".join(f"{k}: {_say(v)}" if k != "_schema" else _say(v) for k, v in errors.items())
    if isinstance(errors, list):
        return " ".join(_say(e) for e in errors)
    return str(errors)


def _labels(text: str) -> list[str]:
    labels = list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    if len(labels) > MAX_LABELS or any(len(x) > 200 for x in labels):
        raise ValidationError({"labels": [f"at most {MAX_LABELS} labels of up to 200 characters each"]})
    return labels


# -- talk ----------------------------------------------------------------------------------------

@bp.post("/mail/send")
@idempotent
def send_mail() -> ResponseReturnValue:
    def action() -> Done:
        a = _form(MailForm)
        sent = messages.send_mail(g.project, _human(), a["to"], a["body"], a["subject"], None, a["priority"])
        return url_for("dashboard.mail"), f"Mail sent to {', '.join(sent.recipients)}."
    return _act("lead", action, pages.mail)


@bp.post("/chat/start")
@idempotent
def start_chat() -> ResponseReturnValue:
    def action() -> Done:
        a = _form(ChatForm)
        me = _human()
        result = chat.post(store(), g.project, me, a["to"], a["body"])
        return url_for("dashboard.conversation", thread=result.message.thread), f"Sent to {a['to']}."
    return _act("lead", action, pages.chat)


@bp.post("/chat/<thread>/reply")
@idempotent
def reply(thread: str) -> ResponseReturnValue:
    """Answer in a conversation the person is part of; an agent blocked in `wire chat ask` wakes now."""
    if not THREAD.match(thread):
        raise NotFound("no such conversation")

    def action() -> Done:
        other = acting.other_in(g.project, acting.find_human(g.project, actor_name()), thread)
        if other is None:
            raise NotFound("you are not in this conversation: start your own chat from the Chat page")
        chat.post(store(), g.project, _human(), other, _form(ReplyForm)["body"])
        return url_for("dashboard.conversation", thread=thread), f"Replied to {other}."
    return _act("lead", action, lambda: pages.conversation(thread))


# -- work ----------------------------------------------------------------------------------------

def _bead(pk: int) -> Bead:
    return acting.bead_in(g.project, pk)


def _in_repo_of(bead: Bead) -> Workspace:
    """The person's workspace acting in the bead's repo (its bare id resolves there)."""
    return acting.in_repo(_human(), bead.repo_id)


def _back(pk: int) -> str:
    return url_for("dashboard.bead", pk=pk)


@bp.post("/work/new")
@idempotent
def create_bead() -> ResponseReturnValue:
    def action() -> Done:
        a = _form(CreateForm)
        me = _human()
        repos = dashboard.repo_names(g.project.id)
        if a["repo"] and a["repo"] not in repos:
            raise ValidationError({"repo": ["no such repo in this project"]})
        fields_ = {"title": a["title"], "description": a["description"], "priority": a["priority"],
                   "issue_type": a["issue_type"], "labels": _labels(a["labels"])}
        repo_id = a["repo"] or me.repo_id
        made = bead_store.create_bead(g.project.id, acting.in_repo(me, repo_id), fields_)
        return _back(acting.bead_pk(repo_id, made.id)), f"Created {made.id}."
    return _act("lead", action, pages.work)


@bp.post("/work/bead/<int:pk>/edit")
@idempotent
def edit_bead(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead, a = _bead(pk), _form(EditForm)
        old = bead_schema.dump(bead_full(bead))
        labels = _labels(a["labels"])
        changes: dict[str, Any] = {k: a[k] for k in ("title", "description", "priority") if a[k] != old[k]}
        added = [x for x in labels if x not in old["labels"]]
        removed = [x for x in old["labels"] if x not in labels]
        if added:
            changes["add_labels"] = added
        if removed:
            changes["remove_labels"] = removed
        status = a["status"] if a["status"] != bead.status else None
        if status == "in_progress":  # that would make the person the holder: claims are agents' work
            why = "in_progress comes from an agent's claim; pick another status"
            raise ValidationError({"status": [why]})
        if not changes and not status:
            return _back(pk), "Nothing changed."
        claim_store.update_bead(store(), g.project, _in_repo_of(bead), bead.ref, changes, status)
        return _back(pk), f"Saved {bead.ref}."
    return _act("lead", action, lambda: pages.bead(pk))


@bp.post("/work/bead/<int:pk>/comment")
@idempotent
def comment(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead, a = _bead(pk), _form(CommentForm)
        bead_store.add_comment(g.project.id, _in_repo_of(bead), bead.ref, a["text"])
        return _back(pk), f"Commented on {bead.ref}."
    return _act("lead", action, lambda: pages.bead(pk))


@bp.post("/work/bead/<int:pk>/link")
@idempotent
def link(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead, a = _bead(pk), _form(LinkForm)
        bead_store.link(g.project.id, _in_repo_of(bead), bead.ref, a["target"], "blocks")
        return _back(pk), f"{bead.ref} is now blocked by {a['target']}."
    return _act("lead", action, lambda: pages.bead(pk))


@bp.post("/work/bead/<int:pk>/release")
@idempotent
def release(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead, a = _bead(pk), _form(ReasonForm)
        done = claim_store.release_for(g.project, _in_repo_of(bead), bead.ref, a["reason"])
        return _back(pk), f"Released {done.holder}'s claim on {bead.ref}; they have been told."
    return _act("lead", action, lambda: pages.bead(pk))


@bp.post("/work/bead/<int:pk>/close")
@idempotent
def close(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead, a = _bead(pk), _form(ReasonForm)
        try:
            done = claim_store.close_bead(store(), g.project, _in_repo_of(bead), bead.ref, a["reason"])
        except Conflict as exc:  # held by an agent: say how to go on from here
            raise Conflict(f"{exc.message}: release the claim first (its holder is told why)") from None
        freed = [b.id for b in done.unblocked]
        return _back(pk), f"Closed {bead.ref}." + (f" Now ready: {', '.join(freed)}." if freed else "")
    return _act("lead", action, lambda: pages.bead(pk))


@bp.post("/work/bead/<int:pk>/reopen")
@idempotent
def reopen(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead = _bead(pk)
        claim_store.reopen_bead(g.project, _in_repo_of(bead), bead.ref)
        return _back(pk), f"Reopened {bead.ref}."
    return _act("lead", action, lambda: pages.bead(pk))


def _ref(bead: Bead) -> str:
    """`repo:id`: resolves to this very bead whichever repos share its bare id (no workspace to
    resolve in)."""
    return f"{bead.repo.canonical}:{bead.ref}"


@bp.post("/work/bead/<int:pk>/assign")
@idempotent
def assign(pk: int) -> ResponseReturnValue:
    """A binding assignment, as `wire assign` (web/steer.py): the assignee is told who and why."""
    def action() -> Done:
        bead, a = _bead(pk), _form(AssignForm)
        done = steer.assign(g.project, None, actor(), _ref(bead), a["alias"], a["reason"]).assignment
        why = f": {done['reason']}" if done["reason"] else ""
        return _back(pk), f"{bead.ref} is assigned to {done['to']} by {done['by']}{why}; they have been told."
    return _act("lead", action, lambda: pages.bead(pk))


@bp.post("/work/bead/<int:pk>/unassign")
@idempotent
def unassign(pk: int) -> ResponseReturnValue:
    def action() -> Done:
        bead = _bead(pk)
        steer.unassign(g.project, None, actor(), _ref(bead))
        return _back(pk), f"{bead.ref} is no longer assigned."
    return _act("lead", action, lambda: pages.bead(pk))


# -- agents --------------------------------------------------------------------------------------

@bp.post("/team/<alias>/revoke")
@idempotent
def revoke(alias: str) -> ResponseReturnValue:
    """Two steps without JavaScript: the first POST shows what revoking does, the second (`confirm`)
    does it."""
    require("admin")
    if len(alias) > 64:
        raise NotFound("no such workspace")
    acting.workspace_named(g.project, alias)  # 404 before asking about a workspace that is not there
    if request.form.get("confirm") != "yes":
        return render("revoke.html", "team", alias=alias)

    def action() -> Done:
        done = access.revoke_workspace(store(), g.project, alias)
        listed = ", ".join(done.stale_claims)
        stale = f" Its claims are now stale: {listed}." if done.stale_claims else ""
        return url_for("dashboard.team"), f"Revoked {alias}: its token no longer works.{stale}"
    return _act("admin", action, pages.team)


# -- policies ------------------------------------------------------------------------------------

def _policy_page(**context: Any) -> str:
    return render("policy.html", "policy", p=dashboard.policy(g.project), **context)


@bp.post("/policy/preview")
@idempotent
def preview_policy() -> ResponseReturnValue:
    """What the text would become (sections per role), nothing saved."""
    require("admin")
    text = request.form.get("markdown", "")
    try:
        parsed = policies.parse_markdown(_form(PolicyForm)["markdown"])
    except ValidationError as exc:
        return _failed(422, _say(exc.messages), lambda: _policy_page(draft=text))
    except BeadwireError as exc:
        return _failed(exc.status_code, exc.message, lambda: _policy_page(draft=text))
    return _policy_page(draft=text, preview=parsed)


@bp.post("/policy/save")
@idempotent
def save_policy() -> ResponseReturnValue:
    text = request.form.get("markdown", "")

    def action() -> Done:
        parsed = policies.parse_markdown(_form(PolicyForm)["markdown"])
        done = policies.set_bundle(g.project, parsed, source="dashboard")
        if not done.created:
            return url_for("dashboard.policy"), f"No change: version {done.version} already says that."
        saved = f"Version {done.version} saved and active; the team has been told."
        return url_for("dashboard.policy"), saved
    return _act("admin", action, lambda: _policy_page(draft=text))


@bp.post("/policy/activate")
@idempotent
def activate_policy() -> ResponseReturnValue:
    def action() -> Done:
        version = _form(VersionForm)["version"]
        policies.activate(g.project, version)
        return url_for("dashboard.policy"), f"Version {version} is active; the team has been told."
    return _act("admin", action, _policy_page)
