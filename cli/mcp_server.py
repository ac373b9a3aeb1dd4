"""`wire mcp`: a stdio MCP server (the official `mcp` SDK) acting as this worktree's workspace.

A thin layer over the CLI, generated from the operations table (cli/operations.py): a row's `Tool`
names the tool, its arguments (with their JSON schema) and its description. Each tool builds the same
`Client` a `wire` command builds, makes the row's call (or, for the tools that are more than one call,
runs its body in cli/mcp_bodies.py: the chat wait, the watch wait, the escalation's local context, the
lock path rules, the cached policy read), and answers with the text
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
import importlib
import inspect
import io
import json as jsonlib
import re
import threading
import tomllib
from collections.abc import Callable, Collection, Mapping
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import click
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from cli import operations
from cli.banner import Banner
from cli.client import Client, UsageFailure, WireError
from cli.mcp_bodies import Reply
from cli.ops_coord import DEFAULT_ASK_WAIT, MAX_WAIT  # noqa: F401  (the tools' limits, also known here)
from cli.ops_work import DEFAULT_READY, DEFAULT_WATCH_WAIT, MAX_WATCH_WAIT  # noqa: F401  (as above)
from cli.opspec import REQUIRED, Arg, Operation, Tool

INSTRUCTIONS = (
    "beadwire coordinates the coding agents of one project. You act as this worktree's workspace. "
    "Start with `prime` (or `whoami` + `ready`); claim a bead before working on it, close it when done; "
    "lock files before large edits; mail teammates, chat_ask only when blocked; escalate to a human "
    "for decisions you may not take. Leave a `handoff` before you stop. Answers are the `wire` CLI's "
    "text; pass json=true for the full JSON."
)

#: The argument every tool gets (added by `add_tool`): the API's JSON instead of the CLI's text.
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
    try:
        return metadata.version("beadwire")
    except metadata.PackageNotFoundError:
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


def error_for_mcp(error: dict[str, Any], arguments: Collection[str],
                  tools: Mapping[str, str]) -> dict[str, Any]:
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
        blocks: list[Any] = [TextContent(type="text", text=text)]
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


# -- tools, generated from the operations table (cli/operations.py) ---------------------------

def resolve(target: str) -> Any:
    """The function `module:name` names (a printer, or a tool body in cli/mcp_bodies.py)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def parameter(arg: Arg) -> inspect.Parameter:
    """The tool argument as a parameter the SDK builds the tool's JSON schema from."""
    annotation = Annotated[arg.type, Field(**arg.field)] if arg.field else arg.type
    default = inspect.Parameter.empty if arg.default is REQUIRED else arg.default
    return inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def add_tool(server: MCPServer, tools: Tools, op: Operation, tool: Tool) -> None:
    """Register `tool` of row `op`: its arguments and `json`; its body runs on a fresh client, its
    answer is rendered by the `wire` command's printer, its errors are the CLI's in the tool's words."""
    params = [*(parameter(arg) for arg in tool.args), JSON_ARG]
    names = frozenset(p.name for p in params)
    body = resolve(tool.run) if tool.run else None
    printer = resolve(tool.printer) if tool.printer else None
    render = None if tool.printer_args else printer

    def call(**arguments: Any) -> Any:
        as_json = arguments.pop("json", False)
        return tools.run(lambda client: run_tool(client, op, tool, body, printer, arguments), render, as_json,
                         names)

    # the SDK builds the tool's schema from this signature: the tool's arguments and `json`
    call.__name__ = tool.name
    call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    server.add_tool(call, name=tool.name, description=tool.description, structured_output=False,
                    annotations=READ_ONLY if tool.readonly else None)
    if tool.command:
        tools.commands[tool.command] = tool.name


def run_tool(client: Client, op: Operation, tool: Tool, body: Callable[..., Any] | None,
             printer: Callable[..., None] | None, arguments: dict[str, Any]) -> Any:
    """One call of the tool: its custom body, or the operation with the arguments as its parameters
    (a `Reply` when the printer takes some of them: "released bd-12")."""
    for arg in tool.args:
        if arg.not_empty:
            not_empty(arguments[arg.name], arg.not_empty)
    if body is not None:
        return body(client, **arguments)
    values = dict(tool.fixed)
    for arg in tool.args:
        value = arguments[arg.name]
        if value is None and "list" in str(arg.type):
            value = []  # an omitted list is an empty one, as the CLI sends it
        values[arg.name if arg.param is None else arg.param] = value.strip() if arg.strip else value
    answer = client.perform(op.name, **values)
    if tool.printer_args and printer is not None:
        return Reply(answer, functools.partial(printer, **{key: arguments[name] for key,
                                                           name in tool.printer_args}))
    return answer


def not_empty(text: str, what: str) -> str:
    """The text, or the CLI's usage error for an empty one."""
    if not text.strip():
        raise click.UsageError(f"the {what} is empty")
    return text


def build(url: str | None = None, timeout: float = 15.0, auto_reserve: bool = True) -> MCPServer:
    """The MCP server with every tool registered."""
    server = WireServer("beadwire", version=version(), instructions=INSTRUCTIONS, log_level="WARNING")
    tools = Tools(url, timeout, auto_reserve)
    for op, tool in operations.tools():
        add_tool(server, tools, op, tool)
    return server


@click.command("mcp")
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Run an MCP server on stdio acting as this worktree's workspace (for Claude Code, Codex, Cursor)."""
    root = ctx.find_root().params
    build(root.get("url"), root.get("timeout") or 15.0, not root.get("no_auto_reserve")).run("stdio")
