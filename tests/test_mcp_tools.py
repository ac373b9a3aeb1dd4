"""`wire mcp` in-process, without a server: the tool table, errors in the tools' words, argument
checks in the CLI's error form, answers rendered by the CLI's printers, the version it reports.

The end-to-end tests (the SDK's stdio client against a real stack) are in tests/test_mcp.py.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from cli import locks, mcp_server
from cli.client import CLAIM_HINT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    return mcp_server.build("http://127.0.0.1:9")  # nothing listens there: no test here reaches a server


def call(server, tool: str, arguments: dict) -> tuple[bool, dict]:
    result = asyncio.run(server.call_tool(tool, arguments))
    (block,) = result.content
    return result.is_error, json.loads(block.text)


def test_a_claim_hint_names_the_tool_argument_and_tool_instead_of_the_cli_flag_and_command():
    hint = mcp_server.for_mcp(CLAIM_HINT, {"id", "jump_in", "json"}, {"ready": "ready"})
    assert hint == "pick other work with 'ready', mail the holder, or take it with jump_in=REASON"


def test_flags_become_arguments_only_where_the_tool_has_them():
    arguments = {"labels", "all", "id"}
    assert mcp_server.for_mcp("filter with --label L or --all", arguments) == (
        "filter with labels=L or all=true")
    assert mcp_server.for_mcp("pass the key with --key KEY", arguments) == "pass the key with --key KEY"


def test_commands_become_the_tools_that_do_them():
    tools = {"mail list": "check_inbox", "deps": "deps", "ready": "ready"}
    assert mcp_server.for_mcp("1 unread (wire mail list)", set(), tools) == "1 unread (check_inbox)"
    assert mcp_server.for_mcp("see the graph with `wire deps ID`", set(), tools) == (
        "see the graph with `deps ID`")
    assert mcp_server.for_mcp("start one with `wire serve`", set(), tools) == "start one with `wire serve`"


def test_error_bodies_keep_their_code_and_details():
    body = {"code": "claim_conflict", "message": "bd-1 is held by ann", "hint": CLAIM_HINT, "holder": "--x"}
    translated = mcp_server.error_for_mcp(body, {"jump_in"}, {})
    assert translated == {**body, "hint": CLAIM_HINT.replace("--jump-in REASON", "jump_in=REASON")}


def test_every_tool_takes_json_and_the_new_tools_are_there(server):
    tools = {t.name: t for t in asyncio.run(server.list_tools())}
    assert {"search", "deps", "assign", "watch"} <= set(tools)
    assert "explain" in tools["ready"].input_schema["properties"]
    for tool in tools.values():
        assert tool.input_schema["properties"]["json"]["type"] == "boolean", tool.name
        assert "json" not in tool.input_schema.get("required", [])
    watch = tools["watch"].input_schema["properties"]["timeout"]
    assert watch["default"] <= watch["maximum"] <= 30


@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("ready", {"limit": "many"},
     "limit: Input should be a valid integer, unable to parse string as an integer"),
    ("claim", {"id": ["bd-1"]}, "id: Input should be a valid string"),
    ("lock", {"paths": "src/a.py"}, "paths: Input should be a valid list"),
    ("ack_mail", {"id": 0}, "id: Input should be greater than or equal to 1"),
    ("watch", {"timeout": 3600}, "timeout: Input should be less than or equal to 30"),
    ("show_bead", {}, "id: Field required"),
])
def test_a_wrong_argument_is_a_usage_error_in_the_cli_form_not_a_validation_dump(
    server, tool, arguments, message
):
    failed, answer = call(server, tool, arguments)
    assert failed and set(answer) == {"error"}
    assert answer["error"]["code"] == "usage"
    assert answer["error"]["message"] == f"wrong arguments for {tool}: {message}"
    assert answer["error"]["hint"].startswith(f"{tool} takes ")
    assert "json (boolean)" in answer["error"]["hint"]


def test_an_answer_is_what_the_cli_prints_warnings_included(capsys):
    answer = {"granted": [{"pattern": "src/a.py", "seconds_left": 300}],
              "conflicts": [{"path": "src/a.py", "pattern": "src/**", "alias": "bob", "reason": "refactor",
                             "seconds_left": 245}]}
    text = mcp_server.rendered(locks._print_lock, answer)
    locks._print_lock(answer)
    printed = capsys.readouterr()
    assert text == (printed.out + printed.err).rstrip("\n")
    assert text == ("reserved src/a.py for 5m00s\n"
                    "warning: src/a.py is reserved by bob as src/** (refactor; 4m05s left)")


def test_the_server_reports_beadwire_s_version(server, monkeypatch):
    from importlib import metadata

    assert server.version == metadata.version("beadwire") != ""

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)  # run from a source tree: pyproject.toml says it
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert mcp_server.version() == expected
