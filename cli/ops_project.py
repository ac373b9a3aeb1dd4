"""Rows of the operations table (cli/operations.py): escalations, settings, steering, policies, keys,
persons. Most of these are the humans' and coordinators' (a project key, or `--as NAME`), so only
`escalate` and `policy` are MCP tools."""

from __future__ import annotations

from cli.opspec import Arg, Operation, Param, Tool

HUMANS = "a human's or coordinator's command, not an agent's tool"
NAME = Param("name", "path")
ALIAS = Param("alias", "path")
IDENT = Param("ident", "path", kind=int)

ROWS: tuple[Operation, ...] = (
    Operation(
        "escalate", "POST", "/v1/escalations",
        tuple(Param(n) for n in ("subject", "situation", "options", "severity", "context", "ttl")),
              cli=("escalate",),
        tools=(Tool("escalate",
                    "Ask a human to decide; your claims, locks, branch and git status are attached. "
                    "The answer arrives as a notice.", (
                        Arg("subject", str, field={"min_length": 1}),
                        Arg("situation", str, field={"min_length": 1,
                                                     "description": ("What you tried and what needs "
                                                                     "deciding.")},
                            not_empty="situation"),
                        Arg("options", list[str] | None, None, field={
                            "description": "Choices; recommendation first."}),
                        Arg("severity", str, "normal", field={"pattern": "^(low|normal|high|critical)$"})),
                    "cli.escalations:_print_raised", command="escalate", run="cli.mcp_bodies:escalate"),)),
    Operation("escalations", "GET", "/v1/escalations",
              (Param("status", "query"), Param("mine", "query"), Param("limit", "query")),
              cli=("escalations",), cli_only=HUMANS),
    Operation("escalation", "GET", "/v1/escalations/{ident}", (IDENT,), cli=("escalations show",),
              cli_only=HUMANS),
    Operation("respond", "POST", "/v1/escalations/{ident}/respond",
              (IDENT, Param("response"), Param("note"), Param("by")), cli=("respond",), cli_only=HUMANS),
    Operation("webhook", "GET", "/v1/project/webhook", cli=("escalations webhook",), cli_only=HUMANS),
    Operation("set_webhook", "PUT", "/v1/project/webhook", (Param("url"),), raw_body=True,
              cli=("escalations webhook",), cli_only=HUMANS),
    Operation("test_webhook", "POST", "/v1/project/webhook/test", cli=("escalations webhook",),
              cli_only=HUMANS),
    Operation("project_settings", "GET", "/v1/project/settings", cli=("settings",), cli_only=HUMANS),
    Operation("set_project_settings", "PATCH", "/v1/project/settings", cli=("settings",), cli_only=HUMANS),
    # -- steering and the audit log --
    Operation("assign", "POST", "/v1/beads/{ref}/assign", (Param("ref", "path"), Param("alias"),
                                                           Param("reason")),
              raw_body=True, cli=("assign",),
              cli_only=HUMANS + " (agents set the assignee: the assign tool)"),
    Operation("unassign", "DELETE", "/v1/beads/{ref}/assign", (Param("ref", "path"),), cli=("unassign",),
              cli_only=HUMANS),
    Operation("pause", "POST", "/v1/workspaces/{alias}/pause", (ALIAS, Param("reason")), raw_body=True,
              cli=("agent pause",), cli_only=HUMANS),
    Operation("resume", "DELETE", "/v1/workspaces/{alias}/pause", (ALIAS,), cli=("agent resume",),
              cli_only=HUMANS),
    Operation("audit", "GET", "/v1/audit",
              tuple(Param(n, "query") for n in ("since", "who", "bead", "action", "limit")),
              cli=("audit",), cli_only=HUMANS),
    Operation("dashboard_link", "POST", "/v1/dashboard/link", cli=("dashboard",),
              cli_only="a login link is for a person's browser"),
    # -- policies --
    Operation(
        "policy", "GET", "/v1/policy", (Param("role", "query"),), cli=("policy",),
        tools=(Tool("policy", "The project's invariants and your role's playbook (or another role's).", (
            Arg("role", str | None, None),), "cli.policy:_print_policy", readonly=True, command="policy",
            run="cli.mcp_bodies:policy"),)),
    Operation("policy_bundle", "GET", "/v1/policy/bundle", (Param("version", "query"),),
              cli=("policy export",), cli_only=HUMANS),
    Operation("policy_history", "GET", "/v1/policy/history", cli=("policy history",), cli_only=HUMANS),
    Operation("set_policy", "PUT", "/v1/policy", raw_body=True, cli=("policy set",), cli_only=HUMANS),
    Operation("activate_policy", "POST", "/v1/policy/activate", (Param("version"),), raw_body=True,
              cli=("policy activate",), cli_only=HUMANS),
    Operation("reset_policy", "POST", "/v1/policy/reset", cli=("policy reset",), cli_only=HUMANS),
    # -- keys and workspaces --
    Operation("rotate_key", "POST", "/v1/project/key/rotate", cli=("key rotate",), cli_only=HUMANS),
    Operation("join_key", "POST", "/v1/join-keys", cli=("key join",), cli_only=HUMANS),
    Operation("revoke", "POST", "/v1/workspaces/{alias}/revoke", (ALIAS,), cli=("workspace revoke",),
              cli_only=HUMANS),
    Operation("set_role", "PUT", "/v1/workspaces/{alias}/role", (ALIAS, Param("role")), raw_body=True,
              cli=("workspace role", "add-worktree"), cli_only=HUMANS),
    # -- persons --
    Operation("add_human", "POST", "/v1/humans", (Param("name"), Param("email"), Param("role")),
              raw_body=True, cli=("human add",), cli_only=HUMANS),
    Operation("invite_human", "POST", "/v1/humans/{name}/invite", (NAME,), cli=("human invite",),
              cli_only=HUMANS),
    Operation("humans", "GET", "/v1/humans", cli=("human list",), cli_only=HUMANS),
    Operation("remove_human", "DELETE", "/v1/humans/{name}", (NAME,), cli=("human remove",), cli_only=HUMANS),
    Operation("redeem_invite", "POST", "/v1/invites/redeem", (Param("invite"),), raw_body=True,
              cli=("human login",), cli_only=HUMANS),
    Operation("human_me", "GET", "/v1/humans/me", cli=("human login", "human whoami"), cli_only=HUMANS),
)
