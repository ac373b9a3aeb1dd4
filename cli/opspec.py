"""The shape of one row of the operations table (cli/operations.py): an API call, and how `wire` and
`wire mcp` offer it.

Plain `NamedTuple`s of plain values (types, strings, dicts), so the table costs almost nothing to import:
every `wire` command loads it, `wire --help` included. click and pydantic objects are made from the rows
where they are needed (cli/generated.py, cli/mcp_server.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: An MCP argument without a default (a required one).
REQUIRED: Any = ...


class Param(NamedTuple):
    """One parameter of an operation, named as the call (and the `Client` method) takes it."""

    name: str
    #: Where the request carries it: `path` (a `{name}` in the path), `query` or `body`.
    where: str = "body"
    #: The API's name, when it differs (`from` in the query, `body` in a handoff).
    api: str = ""
    #: `int` path values are sent as numbers (`/v1/mail/12/ack`); other path values are URL-quoted.
    kind: type = str


class Arg(NamedTuple):
    """One argument of an MCP tool; its schema is `Annotated[type, Field(**field)]`."""

    name: str
    type: Any
    default: Any = REQUIRED
    #: The operation parameter it fills (default: the same name); "" for one only a custom body reads.
    param: str | None = None
    #: `pydantic.Field` keywords: description, min_length, ge, le, pattern.
    field: dict[str, Any] | None = None
    #: What the text is (`comment`): blank text is the CLI's usage error "the comment is empty".
    not_empty: str = ""
    #: Sent stripped of surrounding blanks.
    strip: bool = False


class Tool(NamedTuple):
    """An MCP tool: by default one call of its operation, the answer printed by `printer`."""

    name: str
    description: str
    args: tuple[Arg, ...] = ()
    #: The `wire` command's printer, "module:function"; "" when `run` picks one (a `Reply`).
    printer: str = ""
    #: Printer keyword <- tool argument (`ref` <- `id`: "released bd-12").
    printer_args: tuple[tuple[str, str], ...] = ()
    readonly: bool = False
    #: The `wire` command it does (`mail send`), so CLI hints name the tool instead (`for_mcp`).
    command: str = ""
    #: "module:function" `(client, **arguments)` for a tool that is more than one call (cli/mcp_bodies.py).
    run: str = ""
    #: Fixed values sent with the arguments.
    fixed: tuple[tuple[str, Any], ...] = ()


class Option(NamedTuple):
    """A CLI option or argument of a generated command, filling parameter `param`."""

    param: str
    decls: tuple[str, ...]
    metavar: str | None = None
    help: str | None = None
    #: "" (text), "flag", "count" (an int >= 1).
    type: str = ""
    argument: bool = False


class Command(NamedTuple):
    """A generated `wire` command: one call, its answer printed (JSON with `--json`)."""

    #: `show`, or `mail sent` for a subcommand of a hand-written group.
    name: str
    help: str
    options: tuple[Option, ...] = ()
    printer: str = ""
    #: Printer keyword <- parameter (`ref` <- `ref`: "subscribed to bd-12").
    printer_args: tuple[tuple[str, str], ...] = ()


class Operation(NamedTuple):
    """One API operation: the call, and the command and tools that offer it."""

    name: str
    method: str
    #: With `{param}` placeholders (`/v1/beads/{ref}/claim`).
    path: str
    params: tuple[Param, ...] = ()
    #: What a write journaled while the server is unreachable says it does (`claim {ref}`); "" is never
    #: journaled.
    offline: str = ""
    #: Send the body as built (None values and empty lists too), not compacted.
    raw_body: bool = False
    command: Command | None = None
    tools: tuple[Tool, ...] = ()
    #: The hand-written `wire` command(s) that make this call (`sync`, `mail open`).
    cli: tuple[str, ...] = ()
    #: The MCP tools, declared on another row, whose body makes this call too (`ready` explains).
    mcp: tuple[str, ...] = ()
    #: Why no `wire` command or no MCP tool offers it (the table test requires both otherwise).
    cli_only: str = ""
    mcp_only: str = ""
