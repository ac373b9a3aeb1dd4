"""Rows of the operations table (cli/operations.py): identity and onboarding, readiness, beads, claims,
subscriptions, sync. The rows' order is the MCP tools' order in `list_tools`."""

from __future__ import annotations

from cli.opspec import Arg, Command, Operation, Option, Param, Tool

#: MCP argument schemas shared by several tools.
BEAD_ID = {"min_length": 1, "description": "Bead id, e.g. bd-12 or shop:bd-12."}
TEXT = {"min_length": 1}
LIMIT = {"ge": 1, "le": 1000, "description": "At most this many."}
#: Beads the `ready` tool lists by default.
DEFAULT_READY = 10
#: Seconds `watch` and `wait_ready` wait by default, and at most: one bounded wait, then the agent decides
#: again.
DEFAULT_WATCH_WAIT = 15
MAX_WATCH_WAIT = 30

REF = Param("ref", "path")
ID_ARG = Arg("id", str, param="ref", field=BEAD_ID)
ID_OPTION = Option("ref", (), metavar="ID", argument=True)
COUNT_BEADS = Option("limit", ("--limit",), metavar="N", help="At most N beads.", type="count")

ROWS: tuple[Operation, ...] = (
    Operation(
        "whoami", "GET", "/v1/whoami",
        command=Command("whoami",
                        "Show this workspace's identity: alias, role, project, repo, branch, claims.", (),
                        "cli.identity:_print_whoami"),
        tools=(Tool("whoami", "Who you are here: alias, role, project, repo, branch, the beads you hold.", (),
                    "cli.identity:_print_whoami", readonly=True, command="whoami"),)),
    Operation(
        "status", "GET", "/v1/status",
        command=Command("status", "Show who you are, then the team: presence, branches, claims.", (),
                        "cli.identity:_print_status"),
        tools=(Tool("status",
                    "Your identity and the whole team: who is online, on which branch, holding which "
                    "beads.", (), "cli.identity:_print_status", readonly=True, command="status"),)),
    Operation(
        "prime", "GET", "/v1/prime", cli=("prime",),
        tools=(Tool("prime",
                    "Start here: last handoff, identity, playbook summary, your unfinished claims, ready "
                    "work, unread mail, who is online.", (), "cli.onboarding:print_prime", readonly=True,
                    command="prime"),)),
    Operation(
        "handoff", "POST", "/v1/handoffs", (Param("text", api="body"), Param("to")), cli=("handoff",),
        tools=(Tool("handoff",
                    "Leave a note for the next run of this workspace (or for agent `to` taking over): "
                    "what is done, what is next, what to watch out for.", (
                        Arg("text", str, field=TEXT, not_empty="handoff"),
                        Arg("to", str | None, None, field={"description": "Alias taking over."})),
                    "cli.onboarding:_print_left", command="handoff"),)),
    Operation("latest_handoff", "GET", "/v1/handoffs/latest", cli=("handoff",),
              cli_only="over MCP, prime shows the last handoff"),
    Operation("init", "POST", "/v1/init", cli=("init",), cli_only="registering a worktree is `wire init`"),
    Operation(
        "ready", "GET", "/v1/ready", (Param("limit", "query"), Param("role", "query")), cli=("ready",),
        tools=(Tool("ready",
                    "Beads you can claim now (open, unblocked, unclaimed), most urgent first; explain=ID "
                    "says why that bead is or is not ready.", (
                        Arg("limit", int, DEFAULT_READY,
                            field={"ge": 1, "le": 200, "description": "At most this many beads."}),
                        Arg("explain", str | None, None, param="", field={
                            "min_length": 1, "description": "A bead id: why it is or is not ready."}),
                        Arg("role", str | None, None, field={"min_length": 1,
                                                             "description": "Only beads of this role."})),
                    readonly=True, command="ready", run="cli.mcp_bodies:ready"),)),
    Operation(
        "wait_ready", "GET", "/v1/wait-ready", (Param("ref", "query", api="bead"),
                                               Param("seconds", "query", api="timeout")), cli=("wait-ready",),
        tools=(Tool("wait_ready",
                    "Wait (up to timeout seconds) until bead id, or without id any bead for you in your "
                    "repo, is ready; answers at once when it is ready already.", (
                        Arg("id", str | None, None, param="ref",
                            field={"min_length": 1, "description": "A bead id."}),
                        Arg("timeout", int, DEFAULT_WATCH_WAIT, param="seconds", field={
                            "ge": 1, "le": MAX_WATCH_WAIT,
                            "description": "Seconds to wait; a wait_timeout error when it is still not "
                                           "ready."})),
                    "cli.watch:_print_ready", readonly=True, command="wait-ready",
                    run="cli.mcp_bodies:wait_ready"),)),
    Operation("explain", "GET", "/v1/ready/{ref}", (REF,), cli=("ready",), mcp=("ready",)),
    Operation(
        "beads", "GET", "/v1/beads",
        tuple(Param(n, "query") for n in ("status", "type", "label", "assignee", "repo", "priority", "all",
                                          "limit")),
        command=Command("list", "List beads (closed ones only with --all).", (
            Option("status", ("--status",), "S", "open, in_progress, blocked, deferred, closed, ..."),
            Option("type", ("--type",), "T", "Issue type."),
            Option("label", ("--label",), "L", "Only beads with this label."),
            Option("assignee", ("--assignee",), "A", "Only beads assigned to this alias."),
            Option("repo", ("--repo",), "R", "Only this repo (name or canonical origin)."),
            Option("priority", ("-p", "--priority"), "P",
                   "Only this priority (P1, 1, high) or range (0-1, P0-P2)."),
            Option("all", ("--all",), help="Include closed and tombstoned beads.", type="flag"),
            COUNT_BEADS), "cli.beads:_print_listed"),
        tools=(Tool("list_beads", "List beads with filters; closed ones only with all=true.", (
            Arg("status", str | None, None,
                field={"description": "open, in_progress, blocked, deferred, closed"}),
            Arg("type", str | None, None, field={"description": "task, bug, feature, epic, chore"}),
            Arg("label", str | None, None),
            Arg("assignee", str | None, None, field={"description": "An alias."}),
            Arg("repo", str | None, None, field={"description": "Repo name or origin."}),
            Arg("all", bool, False, field={"description": "Include closed beads."}),
            Arg("limit", int, 50, field=LIMIT)), "cli.beads:_print_listed", readonly=True, command="list"),)),
    Operation(
        "search", "GET", "/v1/search", (Param("text", "query", api="q"), Param("limit", "query")),
        command=Command("search", "Search beads by title, description and id.", (
            Option("text", (), argument=True), COUNT_BEADS), "cli.beads:_print_found"),
        tools=(Tool("search", "Search beads by title, description and id.", (
            Arg("text", str, field=TEXT), Arg("limit", int, 20, field=LIMIT)), "cli.beads:_print_found",
            readonly=True, command="search"),)),
    Operation(
        "bead", "GET", "/v1/beads/{ref}", (REF,),
        command=Command("show", "Show a bead: status, claim, dependencies, description, comments.",
                        (ID_OPTION,), "cli.beads:_print_bead"),
        tools=(Tool("show_bead", "One bead in full: description, dependencies, comments, who holds it.",
                    (ID_ARG,), "cli.beads:_print_bead", readonly=True, command="show"),)),
    Operation(
        "deps", "GET", "/v1/beads/{ref}/deps", (REF,),
        command=Command("deps", "Show a bead's blockers, what it blocks, its parent and children.",
                        (ID_OPTION,), "cli.beads:_print_deps"),
        tools=(Tool("deps", "A bead's blockers, what it blocks, its parent and children.", (ID_ARG,),
                    "cli.beads:_print_deps", readonly=True, command="deps"),)),
    Operation(
        "history", "GET", "/v1/beads/{ref}/history", (REF,),
        command=Command("history", "Show who changed a bead, what and when (its last 100 changes, newest "
                                   "first).", (ID_OPTION,), "cli.beads:_print_history"),
        tools=(Tool("history", "Who changed a bead, what and when: its last 100 changes, newest first.",
                    (ID_ARG,), "cli.beads:_print_history", readonly=True, command="history"),)),
    Operation(
        "create_bead", "POST", "/v1/beads",
        tuple(Param(n) for n in ("title", "issue_type", "priority", "description", "labels", "parent",
                                 "blocked_by")),
        cli=("create",),
        tools=(Tool("create_bead", "Create a bead (a unit of work) in this repo.", (
            Arg("title", str, field=TEXT),
            Arg("type", str | None, None, param="issue_type",
                field={"description": "task (default), bug, feature, epic, chore"}),
            Arg("priority", str | None, None,
                field={"description": "0-4 or P0-P4 (0 most urgent; default 2)"}),
            Arg("description", str | None, None),
            Arg("blocked_by", list[str] | None, None,
                field={"description": "Ids of beads that must close first."}),
            Arg("parent", str | None, None, field={"description": "Epic or parent bead id."}),
            Arg("labels", list[str] | None, None)), "cli.beads:_print_created", command="create"),)),
    Operation(
        "update_bead", "PATCH", "/v1/beads/{ref}",
        (REF, *(Param(n) for n in ("status", "title", "priority", "description", "add_labels",
                                   "remove_labels", "assignee", "role", "jump_in"))),
        cli=("update",),
        tools=(Tool("assign", "Assign a bead to an agent (an alias), or to nobody with an empty alias.", (
            ID_ARG, Arg("alias", str, param="assignee", field={"description": "Who should do it."},
                        strip=True)),
            "cli.beads:_print_updated"),)),
    Operation(
        "comment", "POST", "/v1/beads/{ref}/comments", (REF, Param("text")), offline="comment {ref}",
        cli=("comment",),
        tools=(Tool("comment", "Add a comment to a bead.",
                    (ID_ARG, Arg("text", str, field=TEXT, not_empty="comment")),
                    "cli.beads:_print_commented", (("ref", "id"),), command="comment"),)),
    Operation("add_dep", "POST", "/v1/beads/{ref}/deps",
              (REF, Param("target"), Param("dep_type", api="type")),
              cli=("link",), cli_only="agents link beads with create_bead's blocked_by and parent"),
    Operation(
        "claim", "POST", "/v1/beads/{ref}/claim", (REF, Param("jump_in")), offline="claim {ref}",
        command=Command("claim",
                        "Claim a bead so others know you work on it (exit 3 if someone else holds it).", (
            ID_OPTION, Option("jump_in", ("--jump-in",), "REASON",
                              "Take it from its holder (they are told why).")),
            "cli.beads:_print_claim"),
        tools=(Tool("claim",
                    "Claim a bead before working on it; refused if someone holds it unless jump_in gives "
                    "a reason.", (ID_ARG, Arg("jump_in", str | None, None, field={
                        "description": "Take it from its holder; they are told this reason."})),
                    "cli.beads:_print_claim", command="claim"),)),
    Operation(
        "release", "DELETE", "/v1/beads/{ref}/claim", (REF, Param("reason")), offline="release {ref}",
        command=Command("release",
                        "Give a bead back without closing it (a person with --as frees whoever holds "
                        "it).", (ID_OPTION, Option("reason", ("--reason",), "R",
                                                   "As a person (--as NAME): why you "
                                                   "free another's claim; the holder is told.")),
                        "cli.beads:_print_released", (("ref", "ref"),)),
        tools=(Tool("release", "Give a bead back without closing it.", (ID_ARG,), "cli.beads:_print_released",
                    (("ref", "id"),), command="release"),)),
    Operation(
        "close", "POST", "/v1/beads/{ref}/close", (REF, Param("reason")), offline="close {ref}",
        command=Command("close", "Close a bead and list the beads that became ready.", (
            ID_OPTION, Option("reason", ("--reason",), "R",
                              "Why it is closed (done, duplicate, won't fix, ...).")),
            "cli.beads:_print_closed"),
        tools=(Tool("close_bead", "Close a bead you finished; the answer lists beads this unblocked.", (
            ID_ARG, Arg("reason", str | None, None,
                        field={"description": "done, duplicate, won't fix, ..."})),
            "cli.beads:_print_closed", command="close"),)),
    Operation(
        "reopen", "POST", "/v1/beads/{ref}/reopen", (REF,), offline="reopen {ref}",
        command=Command("reopen", "Reopen a closed bead.", (ID_OPTION,), "cli.beads:_print_reopened"),
        cli_only="agents do not reopen beads over MCP"),
    Operation(
        "mine", "GET", "/v1/mine",
        command=Command("mine", "List the beads you hold.", (), "cli.beads:_print_mine"),
        cli_only="over MCP, whoami and prime list the beads you hold"),
    Operation(
        "subscribe", "POST", "/v1/beads/{ref}/subscribe", (REF,),
        command=Command("subscribe",
                        "Get a notice (in the banner and `wire mail`) whenever this bead's status "
                        "changes.", (ID_OPTION,), "cli.beads:_print_subscribed", (("ref", "ref"),)),
        cli_only="over MCP, watch follows the beads an agent waits on"),
    Operation(
        "unsubscribe", "DELETE", "/v1/beads/{ref}/subscribe", (REF,),
        command=Command("unsubscribe", "Stop the notices about this bead.", (ID_OPTION,),
                        "cli.beads:_print_unsubscribed", (("ref", "ref"),)),
        cli_only="over MCP, watch follows the beads an agent waits on"),
    Operation(
        "sync", "POST", "/v1/sync",
        tuple(Param(n) for n in ("jsonl", "base", "mode", "dry_run", "allow_delete", "pull")),
        cli=("sync",), cli_only="the beads file lives in the worktree: `wire sync` (and its git hooks)"),
    Operation("file_records", "GET", "/v1/sync/records", cli=("create", "update", "close"),
              cli_only="keeps the worktree's beads file in step after each bead change"),
    Operation("sync_history", "GET", "/v1/sync/history", (Param("limit", "query"),), cli=("sync",),
              cli_only="the beads file lives in the worktree: `wire sync`"),
    Operation("undo_sync", "POST", "/v1/sync/{run_id}/undo", (Param("run_id", "path", kind=int),),
              cli=("sync",), cli_only="the beads file lives in the worktree: `wire sync`"),
)
