"""The OpenAPI document of the API (`GET /v1/openapi.json`), generated from the app itself.

Every rule of the app's URL map becomes an operation: its path and method from Flask, and from the
view's own `@doc(...)` (web/apidoc.py) its request body and query (the marshmallow schemas the view
loads), its answer (the schema the view dumps with), and its errors from who may call it and what it
takes. A route without `@doc` is still listed (as "undocumented") and fails tests/test_openapi.py, so
a new endpoint cannot go undescribed.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema

from web.apidoc import Doc, doc, doc_of
from web.common import MAX_ID, limit_ip
from web.schemas import Error, Open

bp = Blueprint("openapi", __name__, url_prefix="/v1")

#: Where the schemas of answers live (named components of the document); request schemas are inlined.
ANSWER_MODULES = ("web.schemas",)
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
                   "description": "The project key (humans; admin): returned once when the project is "
                                  "created."},
    "personToken": {"type": "http", "scheme": "bearer", "bearerFormat": "bw_ht_...",
                    "description": "A person's own token (from `POST /v1/invites/redeem`): acts as that "
                                   "person, "
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
                   "schema": {"type": "string", "minLength": 1, "maxLength": 100,
                              "pattern": "^[A-Za-z0-9._:-]+$"}}


class _Document(Schema):
    """The OpenAPI document is an object (described no further here)."""


def is_api(endpoint: str) -> bool:
    return endpoint not in NOT_API and not endpoint.startswith(NOT_API_PREFIXES)


def operations(app: Flask) -> dict[str, Doc]:
    """Endpoint name -> what its view declares (`@doc`), for every documented endpoint of the JSON API."""
    found = {rule.endpoint: doc_of(app.view_functions.get(rule.endpoint)) for rule in app.url_map.iter_rules()
             if is_api(rule.endpoint)}
    return {endpoint: op for endpoint, op in found.items() if op is not None}


def undocumented(app: Flask) -> list[str]:
    """API endpoints of `app` whose view has no `@doc` (tests fail on any)."""
    return sorted({rule.endpoint for rule in app.url_map.iter_rules()
                   if is_api(rule.endpoint) and doc_of(app.view_functions.get(rule.endpoint)) is None})


_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """`/v1/beads/<path:ref>` -> (`/v1/beads/{ref}`, its path parameters)."""
    params = []
    for converter, name in _ARG.findall(rule):
        schema = ({"type": "integer", "minimum": 0, "maximum": MAX_ID} if converter == "int"
                  else {"type": "string", "minLength": 1})
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    return _ARG.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _errors(op: Doc, has_path_args: bool, write: bool) -> list[int]:
    found = set(op.errors) | {503}
    if write:
        found |= {507} | ({400, 409, 422} if op.auth != "none" else set())  # disk full; Idempotency-Key
    if op.auth != "none":
        found |= {401, 429}
    if op.auth != "none":
        # a workspace token on a human-only route; a person where a workspace acts; a role too low
        found.add(403)
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


def _operation(op: Doc, path_params: list[dict[str, Any]], method: str) -> dict[str, Any]:
    answer = op.answer or Open
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
        parameters.append({"in": "header", "name": "If-None-Match", "required": False,
                           "schema": {"type": "string"}})
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
    # the resolver may return None (inline the schema): apispec's annotation says str only
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)  # type: ignore[arg-type]
    spec = APISpec(title="beadwire", version="1", openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "Coordination server for teams of AI coding agents: see docs/API.md"})
    for name, scheme in AUTH_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=Error)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if not is_api(rule.endpoint):
            continue
        op = doc_of(app.view_functions.get(rule.endpoint)) or Doc(f"undocumented ({rule.endpoint})", "either")
        path, params = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, params, method)
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()


def _schema_name(schema: Any) -> str | None:
    """Components are named after the response classes; request schemas are inlined."""
    cls = schema if isinstance(schema, type) else type(schema)
    if not cls.__module__.startswith(ANSWER_MODULES):
        return None
    return cls.__name__


@bp.get("/openapi.json")
@doc("This document", "none", _Document)
def document() -> Response:
    limit_ip()
    app = current_app
    cached = app.extensions.get("beadwire.openapi")
    if cached is None:
        cached = app.extensions["beadwire.openapi"] = build(app)
    return jsonify(cached)
