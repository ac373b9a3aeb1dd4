"""Policies: invariants and role playbooks. Anyone in the project reads them (with ETags); only
humans (the project key) change them.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from store import policies
from store.policies import PolicyVersionView
from web.apidoc import doc
from web.common import MAX_ID, admin, key_or_workspace, load, load_args
from web.idempotency import idempotent
from web.schemas import policies as s

read_bp = Blueprint("policy_read", __name__, url_prefix="/v1")
read_bp.before_request(key_or_workspace)
admin_bp = Blueprint("policy_admin", __name__, url_prefix="/v1")
admin_bp.before_request(admin)

Section = fields.Str(validate=validate.Length(max=policies.MAX_SECTION))


class RoleArgs(Schema):
    role = fields.Str(load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"))


class VersionArgs(Schema):
    version = fields.Int(load_default=None, validate=validate.Range(min=1, max=MAX_ID))


class BundleSchema(Schema):
    """A new version: `{"markdown"}` (sections `# Invariants`, `# Role: <name>`) or
    `{"invariants", "playbooks"}`."""

    markdown = fields.Str(load_default=None, validate=validate.Length(min=1, max=(policies.MAX_ROLES + 1)
                                                                       * policies.MAX_SECTION))
    invariants = fields.Str(load_default=None, validate=validate.Length(max=policies.MAX_SECTION))
    playbooks = fields.Dict(keys=fields.Str(validate=validate.Length(min=1, max=64)), values=Section,
                            load_default=None, validate=validate.Length(max=policies.MAX_ROLES))

    @validates_schema
    def one_form(self, data: dict, **kwargs: object) -> None:
        markdown = data.get("markdown") is not None
        structured = data.get("invariants") is not None or data.get("playbooks") is not None
        if markdown == structured:
            raise ValidationError("give either markdown, or invariants and/or playbooks", "_schema")


class ActivateSchema(Schema):
    version = fields.Int(required=True, validate=validate.Range(min=1, max=MAX_ID))


role_args, version_args = RoleArgs(), VersionArgs()
bundle_schema, activate_schema = BundleSchema(), ActivateSchema()


def _conditional(schema: Schema, view: PolicyVersionView) -> ResponseReturnValue:
    """The answer with `ETag`; 304 without a body when `If-None-Match` names it."""
    response = jsonify(schema.dump(view))
    response.set_etag(view.etag)
    return response.make_conditional(request)


@read_bp.get("/policy")
@doc("The policy for a role", "either", s.PolicyView, query=role_args, etag=True)
def show():
    role = load_args(role_args)["role"] or (g.ws.role if g.ws is not None else None)
    return _conditional(s.policy_view, policies.role_view(g.project, role))


@read_bp.get("/policy/bundle")
@doc("A whole policy version", "either", s.PolicyBundle, query=version_args, errors=(404,), etag=True)
def bundle():
    return _conditional(s.policy_bundle, policies.bundle_view(g.project, load_args(version_args)["version"]))


@read_bp.get("/policy/history")
@doc("Every policy version", "either", s.PolicyVersion, many=True)
def history():
    return jsonify(s.policy_versions.dump(policies.history(g.project)))


@admin_bp.put("/policy")
@doc("Add and activate a policy version", "key", s.PolicySet, ok=201, body=bundle_schema, errors=(409,),
     more={200: s.PolicySet})
@idempotent
def set_bundle():
    a = load(bundle_schema)
    parsed = policies.parse_markdown(a["markdown"]) if a["markdown"] is not None else policies.from_json(a)
    answer = policies.set_bundle(g.project, parsed)
    return jsonify(s.policy_set.dump(answer)), 201 if answer.created else 200


@admin_bp.post("/policy/activate")
@doc("Activate a policy version", "key", s.PolicyVersion, body=activate_schema, errors=(404,))
@idempotent
def activate():
    return jsonify(s.policy_version.dump(policies.activate(g.project, load(activate_schema)["version"])))


@admin_bp.post("/policy/reset")
@doc("Back to the shipped policy", "key", s.PolicySet, ok=201, errors=(409,), more={200: s.PolicySet})
@idempotent
def reset():
    answer = policies.reset(g.project)
    return jsonify(s.policy_set.dump(answer)), 201 if answer.created else 200
