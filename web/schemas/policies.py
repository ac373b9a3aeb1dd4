"""What the policy routes answer (web/policies.py): the views of store/policies.py."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str


class PolicyVersion(Open):
    version = fields.Int(required=True)
    etag = required_str()
    source = required_str()
    created_at = required_str()
    roles = fields.List(fields.Str(), required=True)
    active = fields.Bool(required=True)


class PolicyView(PolicyVersion):
    role = maybe_str()
    playbook_role = maybe_str()
    invariants = required_str()
    playbook = maybe_str()


class PolicyBundle(PolicyVersion):
    invariants = required_str()
    playbooks = fields.Dict(keys=fields.Str(), values=fields.Str(), required=True)
    markdown = required_str()


class PolicySet(PolicyVersion):
    created = fields.Bool(required=True)


policy_version, policy_versions, policy_view = PolicyVersion(), PolicyVersion(many=True), PolicyView()
policy_bundle, policy_set = PolicyBundle(), PolicySet()
