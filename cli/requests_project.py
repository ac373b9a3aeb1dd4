"""`Client` methods for escalations, settings, steering, the dashboard and policies (routes in
cli/ops_project.py). `key` is the project key where the API takes one (else this worktree's token)."""

from __future__ import annotations

from typing import Any

from cli.requests_base import Requests
from cli.transport import header


class ProjectRequests(Requests):
    """Escalations and webhooks, project settings, steering and the audit log, dashboard, policies."""

    def escalate(self, escalation: dict[str, Any] | None = None, **fields: Any) -> Any:
        """`POST /v1/escalations`: ask a human; the server attaches claims, reservations, recent mail."""
        return self.call("escalate", payload={**(escalation or {}), **fields})

    def escalations(self, status: str | None = None, mine: bool = False, limit: int | None = None,
                    key: str | None = None) -> Any:
        """`GET /v1/escalations`: all of them with the key (or as a coordinator), else your own."""
        return self.call("escalations", status=status, mine=mine, limit=limit, token=key)

    def escalation(self, ident: int, key: str | None = None) -> Any:
        """`GET /v1/escalations/<id>`, with its context."""
        return self.call("escalation", ident=ident, token=key)

    def respond(self, ident: int, body: dict[str, Any], key: str) -> Any:
        """`POST /v1/escalations/<id>/respond` (project key).  Raises: Conflict: answered already."""
        return self.call("respond", ident=ident, payload=body, token=key)

    def webhook(self, key: str) -> Any:
        """`GET /v1/project/webhook` (project key)."""
        return self.call("webhook", token=key)

    def set_webhook(self, url: str | None, key: str) -> Any:
        """`PUT /v1/project/webhook` (project key); None removes it."""
        return self.call("set_webhook", url=url, token=key)

    def test_webhook(self, key: str) -> Any:
        """`POST /v1/project/webhook/test` (project key): post a test message once, now; the outcome."""
        return self.call("test_webhook", token=key)

    def project_settings(self, key: str | None = None) -> Any:
        """`GET /v1/project/settings`: ready_scope, idle_claim_minutes (any member, or the project key)."""
        return self.call("project_settings", token=key)

    def set_project_settings(self, changes: dict[str, Any], key: str | None = None) -> Any:
        """`PATCH /v1/project/settings` (a coordinator, or the project key): every setting after the
        change."""
        return self.call("set_project_settings", payload=changes, token=key)

    # -- steering and the audit log (a coordinator's token, or the project key) --

    def assign(self, ref: str, alias: str, reason: str = "", key: str | None = None) -> Any:
        """`POST /v1/beads/<ref>/assign`.  Raises: Forbidden (not a coordinator), NotFound."""
        return self.call("assign", ref=ref, alias=alias, reason=reason, token=key)

    def unassign(self, ref: str, key: str | None = None) -> Any:
        """`DELETE /v1/beads/<ref>/assign`."""
        return self.call("unassign", ref=ref, token=key)

    def pause(self, alias: str, reason: str = "", key: str | None = None) -> Any:
        """`POST /v1/workspaces/<alias>/pause`: it claims nothing new until resumed."""
        return self.call("pause", alias=alias, reason=reason, token=key)

    def resume(self, alias: str, key: str | None = None) -> Any:
        """`DELETE /v1/workspaces/<alias>/pause`."""
        return self.call("resume", alias=alias, token=key)

    def audit(self, since: str | None = None, who: str | None = None, bead: str | None = None,
              action: str | None = None, limit: int | None = None, key: str | None = None) -> Any:
        """`GET /v1/audit`, newest first (a coordinator, or the project key)."""
        return self.call("audit", since=since, who=who, bead=bead, action=action, limit=limit, token=key)

    def dashboard_link(self, key: str | None = None) -> Any:
        """`POST /v1/dashboard/link`: a one-time login link (human with the key, else read-only)."""
        return self.call("dashboard_link", token=key or None)

    # -- policies --

    def policy(self, role: str | None = None, etag: str | None = None,
               key: str | None = None) -> tuple[Any, str | None]:
        """`GET /v1/policy`: (answer, ETag); the answer is None when `etag` is still current (304)."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        status, payload, answer_headers = self.call_exchange("policy", role=role, token=key, headers=headers)
        tag = header(answer_headers, "ETag")
        return (None if status == 304 else payload), (tag.strip('"') if tag else None)

    def policy_bundle(self, version: int | None = None, key: str | None = None) -> Any:
        """`GET /v1/policy/bundle`: a whole version (default: the active one), also as markdown."""
        return self.call("policy_bundle", version=version, token=key)

    def policy_history(self, key: str | None = None) -> Any:
        """`GET /v1/policy/history`: every version, newest first."""
        return self.call("policy_history", token=key)

    def set_policy(self, body: dict[str, Any], key: str) -> Any:
        """`PUT /v1/policy` (project key): `{"markdown"}` or `{"invariants", "roles"}`."""
        return self.call("set_policy", payload=body, token=key)

    def activate_policy(self, version: int, key: str) -> Any:
        """`POST /v1/policy/activate` (project key)."""
        return self.call("activate_policy", version=version, token=key)

    def reset_policy(self, key: str) -> Any:
        """`POST /v1/policy/reset` (project key): back to the shipped defaults."""
        return self.call("reset_policy", token=key)
