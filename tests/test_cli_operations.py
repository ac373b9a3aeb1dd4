"""The operations table (cli/operations.py) is wired all the way: every operation is a `wire` command and
an MCP tool (or says why not), every generated command and tool sends its row's request, and `wire
--help`'s static table says what the generated commands say."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cli import COMMANDS, HELP, cli, generated, mcp_server, operations
from cli.client import HELPERS, Client
from cli.opspec import Operation, Tool

OPS = list(operations.OPERATIONS.values())


def cli_command(path: str) -> click.Command | None:
    """The `wire` command at `path` (`show`, `mail sent`), or None."""
    command: click.Command | None = cli
    for name in path.split():
        if not isinstance(command, click.Group):
            return None
        command = command.get_command(click.Context(command), name)
    return command


@pytest.fixture(scope="module")
def tool_names() -> set[str]:
    return {t.name for t in asyncio.run(mcp_server.build("http://127.0.0.1:9").list_tools())}


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_operation_is_a_command_and_a_tool_or_says_why_not(op: Operation, tool_names: set[str]) -> None:
    commands = ([op.command.name] if op.command else []) + list(op.cli)
    tools = [t.name for t in op.tools] + list(op.mcp)
    assert commands or op.mcp_only, f"{op.name}: no `wire` command makes it, and no reason is given"
    assert tools or op.cli_only, f"{op.name}: no MCP tool makes it, and no reason is given"
    assert not (commands and op.mcp_only), f"{op.name}: mcp_only, but a command makes it"
    assert not (op.tools and op.cli_only), f"{op.name}: cli_only, but it has a tool"
    for path in commands:
        assert cli_command(path) is not None, f"{op.name}: `wire {path}` does not exist"
    for name in tools:
        assert name in tool_names, f"{op.name}: no MCP tool {name}"


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_row_names_its_parameters_once_and_fills_its_path(op: Operation) -> None:
    names = [p.name for p in op.params]
    assert len(names) == len(set(names)), op.name
    reserved = {n for n, p in inspect.signature(Client.call).parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert not reserved & set(names), f"{op.name}: a parameter named like one of Client.call's own"
    assert op.method in ("GET", "POST", "PUT", "PATCH", "DELETE"), op.name
    assert set(re.findall(r"{(\w+)}", op.path)) == {p.name for p in op.params if p.where == "path"}, op.name
    assert {p.where for p in op.params} <= {"path", "query", "body"}, op.name
    if op.offline:
        op.offline.format(**dict.fromkeys(names, "x"))  # names only its own parameters


def tool_rows() -> list[tuple[Operation, Tool]]:
    return operations.tools()


@pytest.mark.parametrize(("op", "tool"), tool_rows(), ids=lambda x: getattr(x, "name", ""))
def test_every_tool_fills_its_operation_or_its_body_takes_its_arguments(op: Operation, tool: Tool) -> None:
    args = [a.name for a in tool.args]
    if tool.run:
        body = mcp_server.resolve(tool.run)
        assert list(inspect.signature(body).parameters)[1:] == args, tool.name
    else:
        params = {p.name for p in op.params}
        filled = [a.name if a.param is None else a.param for a in tool.args]
        assert set(filled) <= params and "" not in filled, f"{tool.name} fills {filled}; {op.name}: {params}"
        assert_helper_takes(op, filled)
    if tool.printer:
        printer = mcp_server.resolve(tool.printer)
        assert {key for key, _ in tool.printer_args} <= set(inspect.signature(printer).parameters), tool.name
    assert {name for _, name in tool.printer_args} <= set(args), tool.name
    assert tool.printer or tool.run, f"{tool.name}: nothing renders its answer"


@pytest.mark.parametrize("name", sorted(operations.commands()))
def test_every_generated_command_fills_its_operation_and_is_listed(name: str) -> None:
    op, spec = operations.commands()[name]
    filled = [o.param for o in spec.options]
    assert set(filled) <= {p.name for p in op.params}, name
    assert_helper_takes(op, filled)
    printer = generated.resolve(spec.printer)
    assert {key for key, _ in spec.printer_args} <= set(inspect.signature(printer).parameters), name
    assert {param for _, param in spec.printer_args} <= set(filled), name
    command = cli_command(name)
    assert command is not None and command.help == spec.help, name
    if " " not in name:  # a root command: lazily listed, and `wire --help` says what it says
        assert COMMANDS[name] == f"cli.generated:{name}" and HELP[name] == spec.help


def assert_helper_takes(op: Operation, filled: list[str]) -> None:
    """Generated commands and tools call the row's `Client` method when it has one: it takes them all."""
    if op.name in HELPERS:
        inspect.signature(getattr(Client, op.name)).bind(None, **dict.fromkeys(filled))


# -- the requests they send (a fake server) ---------------------------------------------------

class Server:
    """A transport that answers every call with `answer` and keeps (method, path, body) of each."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float):
        if not url.endswith("/v1/health"):
            path = url.split("://", 1)[1].partition("/")[2]
            self.calls.append((method, "/" + path, json.loads(body) if body else None))
        return 200, json.dumps(self.answer).encode(), {"X-Beadwire": "1"}


def expected_path(op: Operation) -> str:
    return re.sub(r"{(\w+)}", lambda m: "7" if m.group(1) in ("ident", "run_id", "message_id") else "bd-1",
                  op.path)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path


@pytest.mark.parametrize("name", sorted(operations.commands()))
def test_a_generated_command_sends_its_rows_request(name: str, isolated: Path) -> None:
    op, spec = operations.commands()[name]
    server = Server([] if op.method == "GET" and name not in ("whoami", "status", "deps", "show") else {})
    client = Client("http://127.0.0.1:9", token="bw_ws_x", transport=server, start=isolated,
                    write_through=False)
    args = [("bd-1" if o.param == "ref" else "x") for o in spec.options if o.argument]
    result = CliRunner().invoke(cli, [*name.split(), *args, "--json"], obj=client)
    assert result.exit_code == 0, result.output
    assert [(m, p.split("?")[0]) for m, p, _ in server.calls] == [(op.method, expected_path(op))]


def tool_arguments(tool: Tool) -> dict[str, Any]:
    examples = {str: "bd-1", int: 7, bool: True, list[str]: ["x"]}
    return {a.name: examples.get(a.type, "x") for a in tool.args if a.default is ...}


@pytest.mark.parametrize(("op", "tool"), [(op, t) for op, t in tool_rows() if not t.run],
                         ids=lambda x: getattr(x, "name", ""))
def test_a_generated_tool_sends_its_rows_request(op: Operation, tool: Tool, isolated: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server({})
    monkeypatch.setattr(mcp_server, "Client", functools.partial(Client, token="bw_ws_x", transport=server,
                                                                start=isolated, write_through=False))
    built = mcp_server.build("http://127.0.0.1:9")
    result = asyncio.run(built.call_tool(tool.name, {**tool_arguments(tool), "json": True}))
    assert result.is_error is False, result
    assert [(m, p.split("?")[0]) for m, p, _ in server.calls] == [(op.method, expected_path(op))]
