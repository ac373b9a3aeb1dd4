"""The OpenAPI document of the API (`GET /v1/openapi.json`), generated from the app itself.

Every rule of the app's URL map becomes an operation: its path and method from Flask, its request
body and query from the marshmallow schemas the view loads (web/<area>.py), its answers from
web/responses.py, its errors from who may call it and what it takes. `operations()` says, per
endpoint, what the view reads and answers; a route without an entry there is still listed (as
"undocumented") and fails tests/test_openapi.py, so a new endpoint cannot go undescribed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import Schema

from web import responses as r
from web.common import MAX_ID, limit_ip

bp = Blueprint("openapi", __name__, url_prefix="/v1")

#: Endpoints that are not part of the JSON API (pages, websockets, Prometheus text): name -> why.
NOT_API: dict[str, str] = {
    "static": "Flask's static files",
    "llms.llms_txt": "plain text for agents (`GET /llms.txt`), not JSON",
}
#: Prefixes of endpoints that are not part of the JSON API (a blueprint of pages, say).
NOT_API_PREFIXES: tuple[str, ...] = ("dashboard.", "ws.", "metrics.")

AUTH_SCHEMES = {
    "workspace": {"type": "http", "scheme": "bearer", "bearerFormat": "bw_ws_...",
                  "description": "A workspace token (from `POST /v1/init`): acts only as that workspace."},
    "projectKey": {"type": "http", "scheme": "bearer", "bearerFormat": "bw_pk_...",
                   "description": "The project key (humans; admin): returned once when the project is created."},
    "personToken": {"type": "http", "scheme": "bearer", "bearerFormat": "bw_ht_...",
                    "description": "A person's own token (from `POST /v1/invites/redeem`): acts as that person, "
                                   "within their role (viewer, lead, admin)."},
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [], "workspace": [{"workspace": []}], "key": [{"projectKey": []}, {"personToken": []}],
    "either": [{"workspace": []}, {"projectKey": []}, {"personToken": []}]}
ERROR_TEXT = {304: "Not modified (If-None-Match names the current ETag)", 400: "Not JSON, or nested too deep",
              401: "No bearer, or an unknown or revoked one", 403: "The bearer may not do this",
              404: "Unknown in the caller's project", 409: "Contradicts the current state",
              408: "The body did not arrive within the body deadline (nothing was written)",
              410: "The join key was used already or has expired: ask for a new one",
              413: "Body over the size limit", 422: "Invalid input (details name the field)",
              429: "Rate limit, or too many waiters: retry after the `Retry-After` header's seconds",
              503: "Redis or the database is unreachable",
              507: "The database's disk is full (nothing was written)"}
#: The request-id header of writes (docs/API.md, "Request ids").
IDEMPOTENCY_KEY = {"in": "header", "name": "Idempotency-Key", "required": False,
                   "description": "Apply this write at most once per caller and key",
                   "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9._:-]+$"}}


@dataclass(frozen=True)
class Op:
    """What one endpoint reads and answers."""

    summary: str
    auth: str  # none | workspace | key | either
    answer: type[Schema] | None = None
    ok: int = 200
    many: bool = False
    body: Schema | None = None
    query: Schema | None = None
    #: error statuses beyond those implied by auth, body, query and path parameters
    errors: tuple[int, ...] = ()
    #: more answers: status -> schema (e.g. the health check's 503 is not an error body)
    more: dict[int, type[Schema]] = field(default_factory=dict)
    etag: bool = False
    #: hand-written query parameters (for lists given as repeated `?path=`)
    parameters: tuple[dict[str, Any], ...] = ()


class _Document(Schema):
    """The OpenAPI document is an object (described no further here)."""


@lru_cache(maxsize=1)
def operations() -> dict[str, Op]:
    """Endpoint name -> Op, for every endpoint of the JSON API."""
    from web import (beads, chat, escalations, handoffs, humans, identity, keys, locks, mail, policies, project,
                     steer, sync)

    ws, key, either = "workspace", "key", "either"
    return {
        "openapi.document": Op("This document", "none", _Document),
        "identity.health": Op("Health of Redis and the database", "none", r.Health, more={503: r.Health}),
        "identity.init": Op("Register a worktree (create or join a project)", "none", r.Init, ok=201,
                            body=identity.init_schema, errors=(403, 409, 410), more={200: r.Init}),
        "team.whoami": Op("The caller's workspace", ws, r.Me),
        "team.team_status": Op("The caller and the team", ws, r.Status),
        "team.workspaces": Op("The team", either, r.Workspace, many=True),
        "beads.list_beads": Op("List beads", either, r.Bead, many=True, query=beads.list_args, errors=(409,)),
        "beads.create_bead": Op("Create a bead", either, r.Bead, ok=201, body=beads.create_schema,
                                errors=(404, 409)),
        "beads.show_bead": Op("A bead with its comments and claim", either, r.Bead, errors=(409,)),
        "beads.update_bead": Op("Change a bead (status in_progress claims, closed closes, open releases)", either,
                                r.Open, body=beads.update_schema, errors=(409,)),
        "beads.comment": Op("Comment on a bead", either, r.Comment, ok=201, body=beads.comment_schema, errors=(409,)),
        "beads.link": Op("Add a dependency", either, r.Dependency, ok=201, body=beads.link_schema, errors=(409,)),
        "beads.deps": Op("A bead's blockers, dependents, parent and children", ws, r.Deps, errors=(409,)),
        "beads.claim": Op("Claim a bead", ws, r.ClaimAnswer, body=beads.claim_schema, errors=(409,)),
        "beads.release": Op("Release the caller's claim (409 `not_held` when it holds none); a person (a lead) "
                            "frees whoever holds it, with a reason", either, r.Released,
                              errors=(409,)),
        "beads.close": Op("Close a bead", either, r.Closed, body=beads.close_schema, errors=(409,)),
        "beads.reopen": Op("Reopen a bead", either, r.Bead, errors=(409,)),
        "beads.ready": Op("The ready queue", either, r.Bead, many=True, query=beads.ready_args),
        "beads.wait_ready": Op("Wait until a bead (or any bead for the caller) is ready", ws, r.WaitReady,
                               query=beads.wait_ready_args, errors=(404, 409)),
        "beads.explain": Op("Why a bead is or is not ready", ws, r.Explain, errors=(409,)),
        "beads.mine": Op("Beads the caller holds", ws, r.Bead, many=True),
        "beads.search": Op("Search beads", either, r.Bead, many=True, query=beads.search_args),
        "beads.claims": Op("Every claim of the project", either, r.Claim, many=True),
        "sync.sync": Op("Two-way sync of the caller's beads file (JSONL) against its base", ws, r.SyncResult,
                        body=sync.sync_schema, errors=(409,)),
        "sync.file_records": Op("Beads-file records of beads of the caller's repo", ws, r.SyncRecords, parameters=(
            {"in": "query", "name": "id", "required": True, "style": "form", "explode": True,
             "schema": {"type": "array", "minItems": 1, "maxItems": sync.MAX_IDS,
                        "items": {"type": "string", "minLength": 1, "maxLength": 520}}},)),
        "sync.history": Op("The caller's repo's recent syncs", ws, r.SyncRun, many=True, query=sync.history_args),
        "sync.undo": Op("Undo a sync (as a new change)", ws, r.SyncUndone, errors=(404, 409)),
        "mail.send": Op("Send mail", either, r.Sent, ok=201, body=mail.send_schema, errors=(404,)),
        "mail.inbox": Op("Mail and notices received", ws, r.Message, many=True, query=mail.list_args),
        "mail.sent": Op("Mail sent", ws, r.Message, many=True, query=mail.limit_args),
        "mail.search": Op("Search mail", ws, r.Message, many=True, query=mail.search_args),
        "mail.open_mail": Op("Show and acknowledge mail", ws, r.Message, many=True, body=mail.open_schema,
                             errors=(404,)),
        "mail.ack": Op("Acknowledge one message", ws, r.Acked),
        "mail.subscribe": Op("Subscribe to a bead's status changes", ws, r.Subscribed, errors=(409,)),
        "mail.unsubscribe": Op("Unsubscribe", ws, r.Subscribed, errors=(409,)),
        "chat.post": Op("Send a chat message", either, r.ChatPosted, ok=201, body=chat.post_schema, errors=(404,)),
        "chat.wait": Op("Wait for a chat reply", either, r.ChatMessages, query=chat.wait_args, errors=(404,)),
        "chat.done": Op("Stop waiting on someone", either, r.ChatDone, body=chat.with_schema, errors=(404,)),
        "chat.pending": Op("Conversations with unread messages", either, r.ChatPending),
        "chat.history": Op("A conversation, oldest first", either, r.Message, many=True, query=chat.history_args,
                           errors=(404,)),
        "chat.watch": Op("Block until something arrives", ws, r.Watch, query=chat.watch_args),
        "locks.reserve": Op("Reserve paths", ws, r.Reserved, body=locks.reserve_schema),
        "locks.release": Op("Release the caller's reservations", ws, r.Unreserved, body=locks.release_schema),
        "locks.held": Op("Live reservations in the caller's repo", ws, r.Reservation, many=True,
                         query=locks.list_args),
        "locks.check": Op("Who holds what overlaps paths", ws, r.Holders, parameters=(
            {"in": "query", "name": "path", "required": True, "style": "form", "explode": True,
             "schema": {"type": "array", "minItems": 1, "maxItems": 200,
                        "items": {"type": "string", "minLength": 1, "maxLength": 1024}}},)),
        "locks.check_many": Op("Who holds what overlaps paths (long lists)", ws, r.Holders,
                               body=locks.check_schema),
        "escalations.escalate": Op("Ask a human", ws, r.Escalation, ok=201, body=escalations.escalate_schema),
        "escalations_read.list_escalations": Op("Escalations the caller may see", either, r.Escalation, many=True,
                                                query=escalations.list_args),
        "escalations_read.show": Op("One escalation with its context", either, r.Escalation),
        "escalations_admin.respond": Op("Answer an escalation", key, r.Escalation,
                                        body=escalations.respond_schema, errors=(409,)),
        "escalations_admin.get_webhook": Op("The project's webhook", key, r.Webhook),
        "escalations_admin.put_webhook": Op("Set or remove the webhook", key, r.Webhook,
                                            body=escalations.webhook_schema),
        "escalations_admin.delete_webhook": Op("Remove the webhook", key, r.Webhook),
        "escalations_admin.test_webhook": Op("Post a test message once, now, and tell the outcome", key,
                                             r.WebhookTest, errors=(409,)),
        "policy_read.show": Op("The policy for a role", either, r.PolicyView, query=policies.role_args, etag=True),
        "policy_read.bundle": Op("A whole policy version", either, r.PolicyBundle, query=policies.version_args,
                                 errors=(404,), etag=True),
        "policy_read.history": Op("Every policy version", either, r.PolicyVersion, many=True),
        "policy_admin.set_bundle": Op("Add and activate a policy version", key, r.PolicySet, ok=201,
                                      body=policies.bundle_schema, errors=(409,), more={200: r.PolicySet}),
        "policy_admin.activate": Op("Activate a policy version", key, r.PolicyVersion,
                                    body=policies.activate_schema, errors=(404,)),
        "policy_admin.reset": Op("Back to the shipped policy", key, r.PolicySet, ok=201, errors=(409,),
                                 more={200: r.PolicySet}),
        "handoffs.leave": Op("Leave a handoff for the next run", ws, r.Handoff, ok=201,
                             body=handoffs.handoff_schema, errors=(404,)),
        "handoffs.latest": Op("The newest handoff for the caller", ws, r.LatestHandoff),
        "handoffs.prime": Op("Everything an agent needs at the start of a run", ws, r.Prime),
        "keys.rotate": Op("Replace the project key (shown once)", key, r.Rotated),
        "keys.revoke": Op("Revoke a workspace's token; its claims go stale", key, r.Revoked),
        "keys.set_role": Op("Set a workspace's role (the only way into or out of coordinator)", key, r.RoleSet,
                            body=keys.role_schema),
        "project.show_settings": Op("The project's settings", either, r.ProjectSettings),
        "project.change_settings": Op("Change project settings (a coordinator or the project key)", either,
                                      r.ProjectSettings, body=project.settings_schema),
        "steer.assign": Op("Assign a bead to an agent (a coordinator or a human): it heads the agent's ready, "
                           "others' claims are refused", either, r.Bead, body=steer.assign_schema, errors=(404, 409)),
        "steer.unassign": Op("Remove a bead's assignment (a coordinator or a human)", either, r.Bead,
                             errors=(404, 409)),
        "steer.pause": Op("Pause an agent: it may claim nothing new until resumed (a coordinator or a human)",
                          either, r.PauseState, body=steer.pause_schema, errors=(404,)),
        "steer.resume": Op("Resume a paused agent (a coordinator or a human)", either, r.PauseState,
                           errors=(404,)),
        "steer.audit_log": Op("The audit log, newest first (a coordinator or a human)", either, r.AuditRow,
                              many=True, query=steer.audit_args),
        "dashboard_api.mint_link": Op("A one-time dashboard login link", either, r.DashboardLink, ok=201),
        "humans.list_humans": Op("The persons of the project", key, r.Human, many=True),
        "humans.add_human": Op("Add a person (an admin): their one-time invite", key, r.HumanInvite, ok=201,
                               body=humans.add_schema, errors=(409,)),
        "humans.reinvite": Op("A new invite for a person (the old one stops working)", key, r.HumanInvite,
                              ok=201, errors=(404,)),
        "humans.remove_human": Op("Remove a person: their token and sessions end at once", key, r.HumanRemoved),
        "humans.whoami": Op("The calling person and every project of their login", key, r.HumanMe),
        "invites.redeem": Op("Redeem an invite: the person's token, shown once", "none", r.Redeemed, ok=201,
                             body=humans.redeem_schema, errors=(401,)),
        "joinkeys.create": Op("A single-use join key (24 h) for one agent (project key or a coordinator)", either,
                              r.JoinKeyMade, ok=201),
    }


def is_api(endpoint: str) -> bool:
    return endpoint not in NOT_API and not endpoint.startswith(NOT_API_PREFIXES)


def undocumented(app: Flask) -> list[str]:
    """API endpoints of `app` without an entry in `OPERATIONS` (tests fail on any)."""
    known = operations()
    return sorted({rule.endpoint for rule in app.url_map.iter_rules()
                   if is_api(rule.endpoint) and rule.endpoint not in known})


_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """`/v1/beads/<path:ref>` -> (`/v1/beads/{ref}`, its path parameters)."""
    params = []
    for converter, name in _ARG.findall(rule):
        schema = ({"type": "integer", "minimum": 0, "maximum": MAX_ID} if converter == "int"
                  else {"type": "string", "minLength": 1})
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    return _ARG.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _errors(op: Op, has_path_args: bool, write: bool) -> list[int]:
    found = set(op.errors) | {503}
    if write:
        found |= {507} | ({400, 409, 422} if op.auth != "none" else set())  # disk full; Idempotency-Key
    if op.auth != "none":
        found |= {401, 429}
    if op.auth != "none":
        found.add(403)  # a workspace token on a human-only route; a person where a workspace acts; a role too low
    if op.auth == "none" and op.body is not None:
        found.add(429)  # per client address
    if op.body is not None:
        found |= {400, 408, 413, 422}
    if op.query is not None or op.parameters:
        found |= {400, 422}  # 400: a query string over MAX_QUERY (web/common.py `load_args`)
    if has_path_args:
        found.add(404)
    return sorted(found)


def _content(schema: Any, many: bool = False) -> dict[str, Any]:
    return {"application/json": {"schema": {"type": "array", "items": schema} if many else schema}}


def _operation(op: Op, path_params: list[dict[str, Any]], method: str) -> dict[str, Any]:
    answer = op.answer or r.Open
    responses: dict[Any, Any] = {op.ok: {"description": "OK", "content": _content(answer, op.many)}}
    for status, schema in op.more.items():
        responses[status] = {"description": ERROR_TEXT.get(status, "OK"), "content": _content(schema)}
    write = method != "GET"
    for status in _errors(op, bool(path_params), write):
        if status not in responses:
            responses[status] = {"description": ERROR_TEXT[status], "content": _content("Error")}
    parameters = list(path_params) + list(op.parameters)
    if write and op.auth != "none":  # `/v1/init` ignores the header
        parameters.append(IDEMPOTENCY_KEY)
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    if op.etag:
        parameters.append({"in": "header", "name": "If-None-Match", "required": False, "schema": {"type": "string"}})
        responses[304] = {"description": ERROR_TEXT[304]}
    out: dict[str, Any] = {"summary": op.summary, "responses": responses, "security": SECURITY[op.auth]}
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        required = any(f.required for f in op.body.fields.values())
        out["requestBody"] = {"required": required, "content": _content(op.body)}
    return out


def build(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.0 document of `app`'s JSON API."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    # the resolver may return None (inline the schema): apispec's annotation says str only
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)  # type: ignore[arg-type]
    spec = APISpec(title="beadwire", version="1", openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "Coordination server for teams of AI coding agents: see docs/API.md"})
    for name, scheme in AUTH_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=r.Error)
    known = operations()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if not is_api(rule.endpoint):
            continue
        op = known.get(rule.endpoint) or Op(f"undocumented ({rule.endpoint})", "either")
        path, params = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, params, method)
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()


def _schema_name(schema: Any) -> str | None:
    """Components are named after the response classes; request schemas are inlined."""
    cls = schema if isinstance(schema, type) else type(schema)
    if cls.__module__ != r.__name__:
        return None
    return cls.__name__


@bp.get("/openapi.json")
def document():
    limit_ip()
    app = current_app
    cached = app.extensions.get("beadwire.openapi")
    if cached is None:
        cached = app.extensions["beadwire.openapi"] = build(app)
    return jsonify(cached)
