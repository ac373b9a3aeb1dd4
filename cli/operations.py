"""The operations table: every call `wire` and `wire mcp` make to the HTTP API, in one place.

A row (cli/opspec.py) names the operation, its method and path, its parameters and where each goes;
the `wire` command generated from it (cli/generated.py) or the hand-written ones that make the call;
and the MCP tools generated from it (cli/mcp_server.py). `Client.call(name, **values)` sends any row.

A new endpoint is one row here (plus its schema and view on the server); a `Client` method is needed
only when the client does something locally besides the request (the claims file, the beads file).
The rows are plain values, so importing the table is cheap (every `wire` command does).
"""

from __future__ import annotations

from typing import Any

from cli import ops_coord, ops_project, ops_work
from cli.opspec import Command, Operation, Param, Tool

#: Every operation by name (the name of the `Client` method that wraps it, when there is one).
OPERATIONS: dict[str, Operation] = {op.name: op for op in (*ops_work.ROWS, *ops_coord.ROWS,
                                                           *ops_project.ROWS)}


def operation(name: str) -> Operation:
    """The row named `name`.  Raises: KeyError: no such operation."""
    return OPERATIONS[name]


def commands() -> dict[str, tuple[Operation, Command]]:
    """Generated `wire` commands by name (`show`, `mail sent`)."""
    return {op.command.name: (op, op.command) for op in OPERATIONS.values() if op.command is not None}


def tools() -> list[tuple[Operation, Tool]]:
    """MCP tools, in table order (the order `list_tools` shows them)."""
    return [(op, tool) for op in OPERATIONS.values() for tool in op.tools]


def params_of(op: Operation, where: str) -> tuple[Param, ...]:
    """The operation's parameters carried in `where` (path, query or body)."""
    return tuple(p for p in op.params if p.where == where)


def query_of(op: Operation, values: dict[str, Any]) -> dict[str, Any] | None:
    """The query parameters among `values`, under the API's names (None values are left out later)."""
    query = {p.api or p.name: values.get(p.name) for p in params_of(op, "query")}
    return query or None


def body_of(op: Operation, values: dict[str, Any], body: dict[str, Any] | None) -> Any:
    """The request body: `body` (a whole body given as is) with the body parameters among `values`
    under the API's names; compacted (no None values, no empty lists) unless the row says `raw_body`.
    A GET has none; a DELETE with nothing to say has none either."""
    if op.method == "GET":
        return None
    given = {p.api or p.name: values[p.name] for p in params_of(op, "body") if p.name in values}
    sent = {**(body or {}), **given}
    if not op.raw_body:
        sent = {k: v for k, v in sent.items() if v is not None and v != []}
    return None if op.method == "DELETE" and not sent else sent


def offline_label(op: Operation, values: dict[str, Any]) -> str | None:
    """What a journaled call says it does (`claim bd-12`), or None: the call is never journaled."""
    return op.offline.format(**values) if op.offline else None
