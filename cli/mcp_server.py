"""`wire mcp`: a stdio MCP server (the official `mcp` SDK) acting as this worktree's workspace.

A thin layer over the CLI: each tool builds the same `Client` a `wire` command builds, calls the
same client methods (and the same helpers of the command modules: the chat wait, the watch wait, the
escalation's local context, the lock path rules, the cached policy read), and answers with the text
the `wire` command prints, rendered by the command's own function, so a tool answer costs a model no
more context than the CLI does and the two cannot drift. `json=true` on any tool answers the API's
JSON instead. A CLI error becomes an MCP tool error (`isError`) whose text is the CLI's JSON error
(`{"error": {"code", "message", "hint"?}}`), with the CLI's flags and commands named as the tool's
arguments and tools (`for_mcp`); arguments of the wrong type get the same form (code `usage`).
What the banner would print on stderr comes back as a second text block, each thing once a session.

Only `wire mcp` imports this module (cli/__init__.py), so other `wire` commands never load the SDK.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json as jsonlib
import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from cli import beads, chat, escalations, identity, locks, mail, onboarding, policy, watch
from cli.banner import Banner
from cli.client import Client, UsageFailure, WireError

#: Seconds `chat_ask` waits by default, and the most any chat tool may wait (MCP clients time out).
DEFAULT_ASK_WAIT = 120
MAX_WAIT = 600
#: Seconds `watch` waits by default, and at most: one bounded wait, then the agent decides again.
DEFAULT_WATCH_WAIT = 15
MAX_WATCH_WAIT = 30
#: Beads `ready` lists by default.
DEFAULT_READY = 10
INSTRUCTIONS = (
    "beadwire coordinates the coding agents of one project. You act as this worktree's workspace. "
    "Start with `prime` (or `whoami` + `ready`); claim a bead before working on it, close it when done; "
    "lock files before large edits; mail teammates, chat_ask only when blocked; escalate to a human "
    "for decisions you may not take. Leave a `handoff` before you stop. Answers are the `wire` CLI's "
    "text; pass json=true for the full JSON."
)

Text = Annotated[str, Field(min_length=1)]
BeadId = Annotated[str, Field(min_length=1, description="Bead id, e.g. bd-12 or shop:bd-12.")]
Limit = Annotated[int, Field(ge=1, le=1000, description="At most this many.")]
#: The argument every tool gets (added by `Registry.tool`): the API's JSON instead of the CLI's text.
JSON_ARG = inspect.Parameter("json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
    bool, Field(description="Answer with the API's full JSON instead of the CLI's text.")])

#: `--flag METAVAR` (or `--flag`) in a CLI message; the metavar is upper case, as click prints it.
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z0-9_]*)\b)?")
#: `wire cmd` or `wire group cmd` in a CLI message.
_COMMAND = re.compile(r"\bwire ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
#: One render at a time: rendering swaps the process's stdout and stderr (the MCP wire has its own).
_render_lock = threading.Lock()
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def version() -> str:
    """beadwire's version: the installed distribution's, else the source tree's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("beadwire")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, ValueError, KeyError):
            return "unknown"


# -- translating the CLI's words -------------------------------------------------------------

def for_mcp(text: str, arguments: Collection[str], tools: Mapping[str, str] | None = None) -> str:
    """A CLI message in a tool's words: `--jump-in REASON` becomes `jump_in=REASON` when the tool has
    that argument (`--label L` matches `labels`), and `wire mail list` becomes `check_inbox` when a
    tool does what that command does (`tools`: command -> tool). Anything else is left as it is."""

    def argument(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        name = name if name in arguments else f"{name}s" if f"{name}s" in arguments else None
        if name is None:
            return match.group(0)
        return f"{name}={match.group(2) or 'true'}"

    def command(match: re.Match[str]) -> str:
        two, one = f"{match.group(1)} {match.group(2)}", match.group(1)
        if match.group(2) and two in (tools or {}):
            return (tools or {})[two]
        if one in (tools or {}):
            return (tools or {})[one] + (f" {match.group(2)}" if match.group(2) else "")
        return match.group(0)

    return _COMMAND.sub(command, _FLAG.sub(argument, text))


def error_for_mcp(error: dict[str, Any], arguments: Collection[str], tools: Mapping[str, str]) -> dict[str, Any]:
    """The CLI's error body with its message and hint in the tool's words."""
    return {k: for_mcp(v, arguments, tools) if k in ("message", "hint") and isinstance(v, str) else v
            for k, v in error.items()}


# -- rendering -------------------------------------------------------------------------------

def rendered(render: Callable[[Any], None], answer: Any) -> str:
    """What `render` (a `wire` command's printer) prints for `answer`: stdout, and its warnings."""
    buffer = io.StringIO()
    with _render_lock, contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        render(answer)
    return buffer.getvalue().rstrip("\n")


def compact(data: Any) -> str:
    """JSON without spaces (control characters stay escaped, so terminals are safe)."""
    return jsonlib.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass
class Reply:
    """A tool's answer with the renderer to use when the tool picks one (it depends on the arguments)."""

    answer: Any
    render: Callable[[Any], None]


# -- the banner ------------------------------------------------------------------------------

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


# -- running a tool --------------------------------------------------------------------------

class Tools:
    """Runs tool bodies: one fresh `Client` per call, like one `wire` command."""

    def __init__(self, url: str | None, timeout: float, auto_reserve: bool) -> None:
        self.url, self.timeout, self.auto_reserve = url, timeout, auto_reserve
        self.banner = SessionBanner()
        #: `wire` command -> tool name, for `for_mcp` (filled as tools are registered).
        self.commands: dict[str, str] = {}

    def run(self, call: Callable[[Client], Any], render: Callable[[Any], None] | None, as_json: bool,
            arguments: Collection[str]) -> Any:
        """Run `call` with a new client; its answer as the CLI's text (`render`, or the `Reply`'s) or
        as JSON, or the CLI error in the tool's words (`arguments`), as an MCP result."""
        client = Client(self.url, timeout=self.timeout, auto_reserve=self.auto_reserve)
        client.banner = self.banner.for_call()
        try:
            text, failed = self.text(call(client), render, as_json), False
        except WireError as exc:
            text, failed = self.error(exc.to_dict(), arguments), True
        except click.UsageError as exc:  # includes BadParameter: the same message the CLI prints
            text, failed = self.error(UsageFailure(exc.format_message()).to_dict(), arguments), True
        blocks = [TextContent(type="text", text=text)]
        lines = client.banner.collected
        if lines:
            blocks.append(TextContent(type="text", text="banner (needs you):\n" + "\n".join(lines)))
        return CallToolResult(content=blocks, is_error=failed)

    @staticmethod
    def text(answer: Any, render: Callable[[Any], None] | None, as_json: bool) -> str:
        if isinstance(answer, Reply):
            answer, render = answer.answer, answer.render
        return compact(answer) if as_json or render is None else rendered(render, answer)

    def error(self, body: dict[str, Any], arguments: Collection[str]) -> str:
        return compact({"error": error_for_mcp(body, arguments, self.commands)})


class WireServer(MCPServer):
    """`MCPServer` whose tool calls answer bad arguments in the CLI's error form, not pydantic's dump."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise  # an unknown tool: the SDK's own answer
            schema = next((t.input_schema for t in await self.list_tools() if t.name == name), None)
            return usage_error(name, exc.__cause__, schema)


def usage_error(tool: str, error: ValidationError, schema: dict[str, Any] | None) -> CallToolResult:
    """The `{"error": {"code": "usage", ...}}` result for arguments that fail the tool's schema; the
    rejected values are left out (they are the caller's data), the expected types are listed."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors()]
    body = UsageFailure(f"wrong arguments for {tool}: " + "; ".join(problems)).to_dict()
    properties = (schema or {}).get("properties") or {}
    if properties:
        body["hint"] = f"{tool} takes " + ", ".join(f"{name} ({_schema_type(spec)})"
                                                   for name, spec in properties.items())
    return CallToolResult(content=[TextContent(type="text", text=compact({"error": body}))], is_error=True)


def _schema_type(spec: dict[str, Any]) -> str:
    """`integer`, `string or null`, `array of string` for a JSON schema property."""
    if "anyOf" in spec:
        return " or ".join(_schema_type(s) for s in spec["anyOf"])
    kind = str(spec.get("type", "any"))
    return f"array of {_schema_type(spec.get('items') or {})}" if kind == "array" else kind


# -- registering tools -----------------------------------------------------------------------

@dataclass
class Registry:
    """Adds tools to a server. A tool is `fn(client, **arguments)` returning the API's answer (or a
    `Reply`); the registry adds the `json` argument, renders the answer with `render` (the `wire`
    command's printer) and turns errors into the CLI's error form in the tool's words."""

    server: MCPServer
    tools: Tools

    def tool(self, description: str, render: Callable[[Any], None] | None = None, *, readonly: bool = False,
             cli: str | None = None, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated function as a tool (named after it, or `name`); `render` prints its
        answer unless it returns a `Reply`; `cli` is the `wire` command it does, for `for_mcp`."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            tool_name = name or fn.__name__
            signature = inspect.signature(fn, eval_str=True)
            params = [*list(signature.parameters.values())[1:], JSON_ARG]  # the client is ours to give
            names = frozenset(p.name for p in params)

            def call(**arguments: Any) -> Any:
                as_json = arguments.pop("json", False)
                return self.tools.run(lambda client: fn(client, **arguments), render, as_json, names)

            # the SDK builds the tool's schema from this signature: the body's arguments and `json`
            call.__name__ = tool_name
            call.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
            self.server.add_tool(call, name=tool_name, description=description, structured_output=False,
                                 annotations=READ_ONLY if readonly else None)
            if cli:
                self.tools.commands[cli] = tool_name
            return fn

        return register


def not_empty(text: str, what: str) -> str:
    """The text, or the CLI's usage error for an empty one."""
    if not text.strip():
        raise click.UsageError(f"the {what} is empty")
    return text


# -- tools, one function per area (names and arguments are part of the documented interface) -----

def register_identity(reg: Registry) -> None:
    @reg.tool("Who you are here: alias, role, project, repo, branch, the beads you hold.",
              identity._print_whoami, readonly=True, cli="whoami")
    def whoami(c: Client) -> Any:
        return c.whoami()

    @reg.tool("Your identity and the whole team: who is online, on which branch, holding which beads.",
              identity._print_status, readonly=True, cli="status")
    def status(c: Client) -> Any:
        return c.status()

    @reg.tool("Start here: last handoff, identity, playbook summary, your unfinished claims, ready work, "
              "unread mail, who is online.", onboarding.print_prime, readonly=True, cli="prime")
    def prime(c: Client) -> Any:
        return onboarding.fetch_prime(c)

    @reg.tool("Leave a note for the next run of this workspace (or for agent `to` taking over): "
              "what is done, what is next, what to watch out for.", onboarding._print_left, cli="handoff")
    def handoff(c: Client, text: Text, to: Annotated[str | None, Field(description="Alias taking over.")] = None
                ) -> Any:
        return onboarding.leave_handoff(c, not_empty(text, "handoff"), to)


def register_beads(reg: Registry) -> None:
    @reg.tool("Beads you can claim now (open, unblocked, unclaimed), most urgent first; "
              "explain=ID says why that bead is or is not ready.", beads._print_ready, readonly=True, cli="ready")
    def ready(c: Client, limit: Annotated[int, Field(ge=1, le=200, description="At most this many beads.")]
              = DEFAULT_READY, explain: Annotated[str | None, Field(
                  min_length=1, description="A bead id: why it is or is not ready.")] = None,
              role: Annotated[str | None, Field(min_length=1, description="Only beads of this role.")] = None
              ) -> Any:
        if explain:
            return Reply(c.explain(explain), beads._print_explain)
        mine = beads._my_role(c)
        return Reply(c.ready(limit, role), lambda b: beads._print_ready(b, mine=mine, role=role))

    @reg.tool("Wait (up to timeout seconds) until bead id, or without id any bead for you in your repo, is "
              "ready; answers at once when it is ready already.", watch._print_ready, readonly=True,
              cli="wait-ready")
    def wait_ready(c: Client, id: Annotated[str | None, Field(min_length=1, description="A bead id.")] = None,
                   timeout: Annotated[int, Field(ge=1, le=MAX_WATCH_WAIT, description=(
                       "Seconds to wait; a wait_timeout error when it is still not ready."))] = DEFAULT_WATCH_WAIT
                   ) -> Any:
        return watch.wait_for_ready(c, id, timeout)

    @reg.tool("List beads with filters; closed ones only with all=true.", beads._print_listed, readonly=True,
              cli="list")
    def list_beads(c: Client,
                   status: Annotated[str | None, Field(description="open, in_progress, blocked, deferred, closed")]
                   = None,
                   type: Annotated[str | None, Field(description="task, bug, feature, epic, chore")] = None,
                   label: str | None = None,
                   assignee: Annotated[str | None, Field(description="An alias.")] = None,
                   repo: Annotated[str | None, Field(description="Repo name or origin.")] = None,
                   all: Annotated[bool, Field(description="Include closed beads.")] = False,
                   limit: Limit = 50) -> Any:
        return c.beads(status=status, type=type, label=label, assignee=assignee, repo=repo, all=all, limit=limit)

    @reg.tool("Search beads by title, description and id.", beads._print_found, readonly=True, cli="search")
    def search(c: Client, text: Text, limit: Limit = 20) -> Any:
        return c.search(text, limit)

    @reg.tool("One bead in full: description, dependencies, comments, who holds it.", beads._print_bead,
              readonly=True, cli="show")
    def show_bead(c: Client, id: BeadId) -> Any:
        return c.bead(id)

    @reg.tool("A bead's blockers, what it blocks, its parent and children.", beads._print_deps, readonly=True,
              cli="deps")
    def deps(c: Client, id: BeadId) -> Any:
        return c.deps(id)

    @reg.tool("Create a bead (a unit of work) in this repo.", beads._print_created, cli="create")
    def create_bead(c: Client, title: Text,
                    type: Annotated[str | None, Field(description="task (default), bug, feature, epic, chore")] = None,
                    priority: Annotated[str | None, Field(description="0-4 or P0-P4 (0 most urgent; default 2)")]
                    = None,
                    description: str | None = None,
                    blocked_by: Annotated[list[str] | None, Field(description="Ids of beads that must close first.")]
                    = None,
                    parent: Annotated[str | None, Field(description="Epic or parent bead id.")] = None,
                    labels: list[str] | None = None) -> Any:
        return c.create_bead({"title": title, "issue_type": type, "priority": priority, "description": description,
                              "labels": labels or [], "parent": parent, "blocked_by": blocked_by or []})

    @reg.tool("Assign a bead to an agent (an alias), or to nobody with an empty alias.", beads._print_updated)
    def assign(c: Client, id: BeadId, alias: Annotated[str, Field(description="Who should do it.")]) -> Any:
        return c.update_bead(id, {"assignee": alias.strip()})

    @reg.tool("Add a comment to a bead.", cli="comment")
    def comment(c: Client, id: BeadId, text: Text) -> Any:
        return Reply(c.comment(id, not_empty(text, "comment")), functools.partial(beads._print_commented, ref=id))


def register_claims(reg: Registry) -> None:
    @reg.tool("Claim a bead before working on it; refused if someone holds it unless jump_in gives a reason.",
              beads._print_claim, cli="claim")
    def claim(c: Client, id: BeadId, jump_in: Annotated[str | None, Field(
            description="Take it from its holder; they are told this reason.")] = None) -> Any:
        return c.claim(id, jump_in)

    @reg.tool("Give a bead back without closing it.", cli="release")
    def release(c: Client, id: BeadId) -> Any:
        return Reply(c.release(id), functools.partial(beads._print_released, ref=id))

    @reg.tool("Close a bead you finished; the answer lists beads this unblocked.", beads._print_closed, cli="close")
    def close_bead(c: Client, id: BeadId, reason: Annotated[str | None, Field(
            description="done, duplicate, won't fix, ...")] = None) -> Any:
        return c.close(id, reason)


def register_mail(reg: Registry) -> None:
    @reg.tool("Mail an agent (alias, a,b, @role or @all); asynchronous, nobody waits.", mail._print_sent,
              cli="mail send")
    def send_mail(c: Client, to: Text, body: Text, subject: str | None = None,
                  thread: Annotated[str | None, Field(description="Thread, e.g. a bead id.")] = None) -> Any:
        return c.send_mail({"to": to, "body": not_empty(body, "message body"), "subject": subject, "thread": thread})

    @reg.tool("Your mail and notices, newest first (unread only by default); read ones stay until acked.",
              readonly=True, cli="mail list")
    def check_inbox(c: Client, unread_only: bool = True, sender: Annotated[str | None, Field(
            description="Only from this alias.")] = None, limit: Limit = 20) -> Any:
        return Reply(c.mail(unread_only, sender, limit), functools.partial(mail._print_received, unread=unread_only))

    @reg.tool("Acknowledge (mark read) one message by id.", cli="mail ack")
    def ack_mail(c: Client, id: Annotated[int, Field(ge=1)]) -> Any:
        return Reply(c.ack(id), functools.partial(mail._print_acked, number=id))

    @reg.tool("Wait (up to timeout seconds) until mail, chat or a notice arrives, someone waits on you, or "
              "a bead you follow becomes ready (ready=true: any new ready work); says why it woke.",
              watch._print_watch, readonly=True, cli="watch", name="watch")
    def watch_inbox(c: Client, timeout: Annotated[int, Field(ge=1, le=MAX_WATCH_WAIT, description=(
            "Seconds to wait; a wait_timeout error when nothing came."))] = DEFAULT_WATCH_WAIT,
                    ready: Annotated[bool, Field(description=(
                        "Also wake when new work becomes ready in your repo for your role."))] = False) -> Any:
        answer = watch.wait_for(c, timeout, ready)
        return {**answer, "woke": watch.woke_line(answer).removeprefix("woke: ")}


def register_chat(reg: Registry) -> None:
    @reg.tool("Ask an agent and block until they reply (up to wait_seconds); use when you are blocked.",
              cli="chat ask")
    def chat_ask(c: Client, to: Text, message: Text, wait_seconds: Annotated[int, Field(
            ge=0, le=MAX_WAIT, description="How long to wait for the reply; 0 sends and returns.")]
            = DEFAULT_ASK_WAIT) -> Any:
        return Reply(*chat.talk(c, to, message, wait_seconds))

    @reg.tool("Answer an agent who asked you (see chat_pending); wait_seconds > 0 also waits for their next message.",
              cli="chat reply")
    def chat_reply(c: Client, to: Text, message: Text, wait_seconds: Annotated[int, Field(ge=0, le=MAX_WAIT)] = 0
                   ) -> Any:
        return Reply(*chat.talk(c, to, message, wait_seconds))

    @reg.tool("Who is waiting on your reply, and your conversations with unread messages.", chat._print_pending,
              readonly=True, cli="chat pending")
    def chat_pending(c: Client) -> Any:
        return c.chat_pending()


def register_locks(reg: Registry) -> None:
    @reg.tool("Reserve files or globs (relative to the worktree) so others know you are editing them; "
              "conflicts come back, nothing is refused.", locks._print_lock, cli="lock")
    def lock(c: Client, paths: Annotated[list[str], Field(min_length=1, description="Paths or globs, e.g. src/api/**")],
             ttl: Annotated[int | None, Field(ge=1, le=24 * 3600, description="Seconds to hold.")] = None,
             reason: Annotated[str | None, Field(description="What you are doing.")] = None,
             bead: Annotated[str | None, Field(description="The bead this work is for.")] = None) -> Any:
        return c.lock(locks.repo_patterns(c, tuple(paths)), ttl=ttl, bead=bead, reason=reason)

    @reg.tool("Release reservations: the given paths, or all of yours when paths is omitted.", locks._print_unlock,
              cli="unlock")
    def unlock(c: Client, paths: list[str] | None = None) -> Any:
        return c.unlock(locks.repo_patterns(c, tuple(paths)) if paths else None)

    @reg.tool("Live file reservations in this repo (only yours with mine=true).", locks._print_locks,
              readonly=True, cli="locks", name="locks")
    def list_locks(c: Client, mine: bool = False) -> Any:
        return c.locks(mine=mine)


def register_escalation(reg: Registry) -> None:
    @reg.tool("Ask a human to decide; your claims, locks, branch and git status are attached. "
              "The answer arrives as a notice.", escalations._print_raised, cli="escalate")
    def escalate(c: Client, subject: Text, situation: Annotated[str, Field(
            min_length=1, description="What you tried and what needs deciding.")],
            options: Annotated[list[str] | None, Field(description="Choices; recommendation first.")] = None,
            severity: Annotated[str, Field(pattern="^(low|normal|high|critical)$")] = "normal") -> Any:
        return c.escalate({"subject": subject, "situation": not_empty(situation, "situation"),
                           "options": options or [], "severity": severity,
                           "context": escalations.local_context(c.root)})

    @reg.tool("The project's invariants and your role's playbook (or another role's).", policy._print_policy,
              readonly=True, cli="policy", name="policy")
    def read_policy(c: Client, role: str | None = None) -> Any:
        return policy.fetch(c, role, None)


#: The areas, in the order `list_tools` shows them. A new tool is one function in one of these.
AREAS: tuple[Callable[[Registry], None], ...] = (
    register_identity, register_beads, register_claims, register_mail, register_chat, register_locks,
    register_escalation,
)


def build(url: str | None = None, timeout: float = 15.0, auto_reserve: bool = True) -> MCPServer:
    """The MCP server with every tool registered."""
    server = WireServer("beadwire", version=version(), instructions=INSTRUCTIONS, log_level="WARNING")
    registry = Registry(server, Tools(url, timeout, auto_reserve))
    for area in AREAS:
        area(registry)
    return server


@click.command("mcp")
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Run an MCP server on stdio acting as this worktree's workspace (for Claude Code, Codex, Cursor)."""
    root = ctx.find_root().params
    build(root.get("url"), root.get("timeout") or 15.0, not root.get("no_auto_reserve")).run("stdio")
