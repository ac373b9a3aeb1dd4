"""`wire mcp`: a stdio MCP server (the official `mcp` SDK) acting as this worktree's workspace.

A thin layer over the CLI: each tool builds the same `Client` a `wire` command builds, calls the
same client methods (and the same helpers of the command modules: the chat wait, the escalation's
local context, the lock path rules, the cached policy read), and answers with the API's JSON,
compact. A CLI error becomes an MCP tool error (`isError`) whose text is the CLI's own JSON error
(`{"error": {"code", "message", "hint"?}}`, what `wire --json` prints), so messages match exactly.
What the banner would print on stderr comes back as a second text block, each thing once a session.

The SDK is imported only when the command runs: other `wire` commands never pay for it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import click
from pydantic import Field

from cli.banner import Banner
from cli.client import Client, UsageFailure, WireError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

#: Seconds `chat_ask` waits by default, and the most any chat tool may wait (MCP clients time out).
DEFAULT_ASK_WAIT = 120
MAX_WAIT = 600
#: Beads `ready` lists by default.
DEFAULT_READY = 10
INSTRUCTIONS = (
    "beadwire coordinates the coding agents of one project. You act as this worktree's workspace. "
    "Start with `prime` (or `whoami` + `ready`); claim a bead before working on it, close it when done; "
    "lock files before large edits; mail teammates, chat_ask only when blocked; escalate to a human "
    "for decisions you may not take. Leave a `handoff` before you stop."
)

Text = Annotated[str, Field(min_length=1)]


class SessionBanner:
    """What the banner has shown in this MCP session: each wait, item and conflict once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.waited: set[str] = set()
        self.warned: set[str] = set()

    def for_call(self) -> CollectingBanner:
        return CollectingBanner(self)


class CollectingBanner(Banner):
    """A `Banner` that keeps its lines for the tool result instead of printing them."""

    def __init__(self, session: SessionBanner) -> None:
        super().__init__()
        self.session = session
        self.seen, self.waited, self.warned = session.seen, session.waited, session.warned
        self.collected: list[str] = []

    def show(self, header: str, answer: Any = None) -> None:
        with self.session.lock:
            self.collected += self.lines(header, answer)


class Tools:
    """The tool bodies: one fresh `Client` per call, like one `wire` command."""

    def __init__(self, url: str | None, timeout: float, auto_reserve: bool) -> None:
        self.url, self.timeout, self.auto_reserve = url, timeout, auto_reserve
        self.banner = SessionBanner()

    def run(self, call: Callable[[Client], Any]) -> Any:
        """Run `call` with a new client; the answer (or the CLI error) as an MCP result."""
        from mcp.types import CallToolResult, TextContent

        client = Client(self.url, timeout=self.timeout, auto_reserve=self.auto_reserve)
        client.banner = self.banner.for_call()
        try:
            answer, failed = call(client), False
        except WireError as exc:
            answer, failed = {"error": exc.to_dict()}, True
        except click.UsageError as exc:  # includes BadParameter: the same message the CLI prints
            answer, failed = {"error": UsageFailure(exc.format_message()).to_dict()}, True
        blocks = [TextContent(type="text", text=compact(answer))]
        lines = client.banner.collected
        if lines:
            blocks.append(TextContent(type="text", text="banner (needs you):\n" + "\n".join(lines)))
        return CallToolResult(content=blocks, is_error=failed)


def compact(data: Any) -> str:
    """JSON without spaces (control characters stay escaped, so terminals are safe)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def not_empty(text: str, what: str) -> str:
    """The text, or the CLI's usage error for an empty one."""
    if not text.strip():
        raise click.UsageError(f"the {what} is empty")
    return text


# -- tools -----------------------------------------------------------------------------------

def register(server: MCPServer, tools: Tools) -> None:
    """Register every tool on `server` (names and arguments are part of the documented interface)."""
    from mcp.types import ToolAnnotations

    from cli import onboarding

    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def tool(description: str, readonly: bool = False) -> Callable[[Callable[..., Any]], Any]:
        return server.tool(description=description, structured_output=False,
                           annotations=read if readonly else None)

    @tool("Who you are here: alias, role, project, repo, branch, the beads you hold.", readonly=True)
    def whoami() -> Any:
        return tools.run(lambda c: c.whoami())

    @tool("Your identity and the whole team: who is online, on which branch, holding which beads.", readonly=True)
    def status() -> Any:
        return tools.run(lambda c: c.status())

    @tool("Beads you can claim now (open, unblocked, unclaimed), most urgent first.", readonly=True)
    def ready(limit: Annotated[int, Field(ge=1, le=200, description="At most this many beads.")] = DEFAULT_READY
              ) -> Any:
        return tools.run(lambda c: c.ready(limit))

    @tool("List beads with filters; closed ones only with all=true.", readonly=True)
    def list_beads(status: Annotated[str | None, Field(description="open, in_progress, blocked, deferred, closed")] = None,
                   type: Annotated[str | None, Field(description="task, bug, feature, epic, chore")] = None,
                   label: str | None = None,
                   assignee: Annotated[str | None, Field(description="An alias.")] = None,
                   repo: Annotated[str | None, Field(description="Repo name or origin.")] = None,
                   all: Annotated[bool, Field(description="Include closed beads.")] = False,
                   limit: Annotated[int, Field(ge=1, le=1000)] = 50) -> Any:
        return tools.run(lambda c: c.beads(status=status, type=type, label=label, assignee=assignee, repo=repo,
                                           all=all, limit=limit))

    @tool("One bead in full: description, dependencies, comments, who holds it.", readonly=True)
    def show_bead(id: Annotated[str, Field(min_length=1, description="Bead id, e.g. bd-12 or shop:bd-12.")]
                  ) -> Any:
        return tools.run(lambda c: c.bead(id))

    @tool("Create a bead (a unit of work) in this repo.")
    def create_bead(title: Text,
                    type: Annotated[str | None, Field(description="task (default), bug, feature, epic, chore")] = None,
                    priority: Annotated[str | None, Field(description="0-4 or P0-P4 (0 most urgent; default 2)")] = None,
                    description: str | None = None,
                    blocked_by: Annotated[list[str] | None, Field(description="Ids of beads that must close first.")]
                    = None,
                    parent: Annotated[str | None, Field(description="Epic or parent bead id.")] = None,
                    labels: list[str] | None = None) -> Any:
        body = {"title": title, "issue_type": type, "priority": priority, "description": description,
                "labels": labels or [], "parent": parent, "blocked_by": blocked_by or []}
        return tools.run(lambda c: c.create_bead(body))

    @tool("Claim a bead before working on it; refused if someone holds it unless jump_in gives a reason.")
    def claim(id: Text, jump_in: Annotated[str | None, Field(
            description="Take it from its holder; they are told this reason.")] = None) -> Any:
        return tools.run(lambda c: c.claim(id, jump_in))

    @tool("Give a bead back without closing it.")
    def release(id: Text) -> Any:
        return tools.run(lambda c: c.release(id))

    @tool("Close a bead you finished; the answer lists beads this unblocked.")
    def close_bead(id: Text, reason: Annotated[str | None, Field(
            description="done, duplicate, won't fix, ...")] = None) -> Any:
        return tools.run(lambda c: c.close(id, reason))

    @tool("Add a comment to a bead.")
    def comment(id: Text, text: Text) -> Any:
        return tools.run(lambda c: c.comment(id, not_empty(text, "comment")))

    @tool("Mail an agent (alias, a,b, @role or @all); asynchronous, nobody waits.")
    def send_mail(to: Text, body: Text, subject: str | None = None,
                  thread: Annotated[str | None, Field(description="Thread, e.g. a bead id.")] = None) -> Any:
        return tools.run(lambda c: c.send_mail({"to": to, "body": not_empty(body, "message body"),
                                                "subject": subject, "thread": thread}))

    @tool("Your mail and notices, newest first (unread only by default); read ones stay until acked.",
          readonly=True)
    def check_inbox(unread_only: bool = True, sender: Annotated[str | None, Field(
            description="Only from this alias.")] = None, limit: Annotated[int, Field(ge=1, le=1000)] = 20) -> Any:
        return tools.run(lambda c: c.mail(unread_only, sender, limit))

    @tool("Acknowledge (mark read) one message by id.")
    def ack_mail(id: Annotated[int, Field(ge=1)]) -> Any:
        return tools.run(lambda c: c.ack(id))

    @tool("Ask an agent and block until they reply (up to wait_seconds); use when you are blocked.")
    def chat_ask(to: Text, message: Text, wait_seconds: Annotated[int, Field(
            ge=0, le=MAX_WAIT, description="How long to wait for the reply; 0 sends and returns.")]
            = DEFAULT_ASK_WAIT) -> Any:
        return tools.run(lambda c: converse(c, to, message, wait_seconds))

    @tool("Answer an agent who asked you (see chat_pending); wait_seconds > 0 also waits for their next message.")
    def chat_reply(to: Text, message: Text, wait_seconds: Annotated[int, Field(ge=0, le=MAX_WAIT)] = 0) -> Any:
        return tools.run(lambda c: converse(c, to, message, wait_seconds))

    @tool("Who is waiting on your reply, and your conversations with unread messages.", readonly=True)
    def chat_pending() -> Any:
        return tools.run(lambda c: c.chat_pending())

    @tool("Reserve files or globs (relative to the worktree) so others know you are editing them; "
          "conflicts come back, nothing is refused.")
    def lock(paths: Annotated[list[str], Field(min_length=1, description="Paths or globs, e.g. src/api/**")],
             ttl: Annotated[int | None, Field(ge=1, le=24 * 3600, description="Seconds to hold.")] = None,
             reason: Annotated[str | None, Field(description="What you are doing.")] = None,
             bead: Annotated[str | None, Field(description="The bead this work is for.")] = None) -> Any:
        return tools.run(lambda c: c.lock(_patterns(c, paths), ttl=ttl, bead=bead, reason=reason))

    @tool("Release reservations: the given paths, or all of yours when paths is omitted.")
    def unlock(paths: list[str] | None = None) -> Any:
        return tools.run(lambda c: c.unlock(_patterns(c, paths) if paths else None))

    @tool("Live file reservations in this repo (only yours with mine=true).", readonly=True)
    def locks(mine: bool = False) -> Any:
        return tools.run(lambda c: c.locks(mine=mine))

    @tool("Ask a human to decide; your claims, locks, branch and git status are attached. "
          "The answer arrives as a notice.")
    def escalate(subject: Text, situation: Annotated[str, Field(
            min_length=1, description="What you tried and what needs deciding.")],
            options: Annotated[list[str] | None, Field(description="Choices; recommendation first.")] = None,
            severity: Annotated[str, Field(pattern="^(low|normal|high|critical)$")] = "normal") -> Any:
        return tools.run(lambda c: _escalate(c, subject, situation, options or [], severity))

    @tool("The project's invariants and your role's playbook (or another role's).", readonly=True)
    def policy(role: str | None = None) -> Any:
        return tools.run(lambda c: _policy(c, role))

    @tool("Start here: last handoff, identity, playbook summary, your unfinished claims, ready work, "
          "unread mail, who is online.", readonly=True)
    def prime() -> Any:
        return tools.run(onboarding.fetch_prime)

    @tool("Leave a note for the next run of this workspace (or for agent `to` taking over): "
          "what is done, what is next, what to watch out for.")
    def handoff(text: Text, to: Annotated[str | None, Field(description="Alias taking over.")] = None) -> Any:
        return tools.run(lambda c: onboarding.leave_handoff(c, not_empty(text, "handoff"), to))


def converse(client: Client, to: str, message: str, wait: int) -> Any:
    """Like `wire chat ask|reply`: post, then (wait > 0) block until the reply or time out."""
    from cli.chat import await_reply

    answer = client.chat(to, not_empty(message, "message"), wait)
    if wait <= 0:
        return answer
    posted = answer.get("message") or {}
    return await_reply(client, to, posted.get("id"), answer.get("cursor"), wait)


def _patterns(client: Client, paths: list[str]) -> list[str]:
    from cli.locks import repo_patterns

    return repo_patterns(client, tuple(paths))


def _escalate(client: Client, subject: str, situation: str, options: list[str], severity: str) -> Any:
    from cli.escalations import local_context

    return client.escalate({"subject": subject, "situation": not_empty(situation, "situation"),
                            "options": options, "severity": severity, "context": local_context(client.root)})


def _policy(client: Client, role: str | None) -> Any:
    from cli.policy import fetch

    return fetch(client, role, None)


def build(url: str | None = None, timeout: float = 15.0, auto_reserve: bool = True) -> MCPServer:
    """The MCP server with every tool registered."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("beadwire", instructions=INSTRUCTIONS, log_level="WARNING")
    register(server, Tools(url, timeout, auto_reserve))
    return server


@click.command("mcp")
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Run an MCP server on stdio acting as this worktree's workspace (for Claude Code, Codex, Cursor)."""
    root = ctx.find_root().params
    build(root.get("url"), root.get("timeout") or 15.0, not root.get("no_auto_reserve")).run("stdio")
