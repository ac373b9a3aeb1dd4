"""`wire mcp` driven by the official MCP SDK's stdio client, against a real `wire serve` stack.

Two agents, each in its own git worktree with its own `wire mcp` process: A creates a bead and
claims it, B's claim is refused with the CLI's own message, A mails B and B reads it, A's chat_ask
blocks until B answers.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"whoami", "status", "ready", "list_beads", "show_bead", "create_bead", "claim", "release", "close_bead",
         "comment", "send_mail", "check_inbox", "ack_mail", "chat_ask", "chat_reply", "chat_pending", "lock",
         "unlock", "locks", "escalate", "policy"}
_projects = itertools.count(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("mcp-stack"), workers=2)
    yield server
    server.stop()


class Agent:
    """One agent: a git worktree, its config dir, the `wire` CLI and `wire mcp` run there."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def wire(self, *args: str, code: int = 0) -> dict:
        proc = subprocess.run([sys.executable, "-c", "from cli import main; main()", "--json", *args],
                              cwd=self.root, env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=90, check=False)
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return json.loads(proc.stdout)

    def server(self):
        from mcp import StdioServerParameters

        return StdioServerParameters(command=sys.executable, args=["-c", "from cli import main; main()", "mcp"],
                                     cwd=str(self.root), env=self.env)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def pair(stack, tmp_path):
    """Two agents of a new project, in two clones of one origin."""
    project, key, agents = f"mcp{next(_projects)}", None, []
    for name in ("ann", "ben"):
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "remote", "add", "origin", "git@github.com:acme/mcp.git")
        env = {"WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg-{name}"), "HOME": str(tmp_path),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        agent = Agent(repo, env)
        answer = agent.wire("init", "--project", project, "--alias", name, *(["--key", key] if key else []))
        key = key or answer["project_key"]
        agents.append(agent)
    return agents


def result(call) -> object:
    """The JSON answer of a successful tool call."""
    assert not call.is_error, call.content
    return json.loads(call.content[0].text)


def error(call) -> dict:
    """The CLI's JSON error of a failed tool call."""
    assert call.is_error, call.content
    return json.loads(call.content[0].text)["error"]


def run_sessions(a: Agent, b: Agent, body) -> None:
    """Run `body(session_a, session_b)` with one `wire mcp` per agent, each opened by the SDK client."""
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async def main() -> None:
        async with stdio_client(a.server(), errlog=quiet) as (ra, wa), \
                stdio_client(b.server(), errlog=quiet) as (rb, wb), \
                ClientSession(ra, wa) as sa, ClientSession(rb, wb) as sb:
            with anyio.fail_after(120):
                await body(sa, sb)

    with open(os.devnull, "w") as quiet:  # the servers' stderr (banner warnings, logs)
        anyio.run(main)


async def banner_of(session) -> str:
    """The banner block of the first `whoami` answer that has one (mail reaches mailboxes eventually)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        call = await session.call_tool("whoami", {})
        if len(call.content) > 1:
            return call.content[1].text
        await anyio.sleep(0.2)
    return ""


def test_mcp_lists_the_tools_creates_claims_and_mails_like_the_cli(pair):
    ann, ben = pair
    seen: dict[str, object] = {}

    async def body(sa, sb) -> None:
        init = await sa.initialize()
        await sb.initialize()
        seen["server"] = init.server_info.name
        tools = (await sa.list_tools()).tools
        seen["tools"] = {t.name: t for t in tools}
        bead = result(await sa.call_tool("create_bead", {"title": "MCP-made bead", "type": "bug", "priority": "1"}))
        seen["bead"] = bead
        seen["claim"] = result(await sa.call_tool("claim", {"id": bead["id"]}))
        seen["refused"] = error(await sb.call_tool("claim", {"id": bead["id"]}))
        seen["unknown"] = error(await sa.call_tool("send_mail", {"to": "bem", "body": "hi"}))
        seen["mail"] = result(await sa.call_tool("send_mail", {"to": "ben", "subject": "review",
                                                              "body": f"please review {bead['id']}"}))
        seen["banner"] = await banner_of(sb)
        seen["inbox"] = result(await sb.call_tool("check_inbox", {}))
        seen["mine"] = result(await sa.call_tool("whoami", {}))

    run_sessions(ann, ben, body)
    assert seen["server"] == "beadwire"
    tools = seen["tools"]
    assert TOOLS <= set(tools)
    for tool in tools.values():
        assert tool.description and "\n" not in tool.description and tool.input_schema["type"] == "object"
    assert set(tools["create_bead"].input_schema["properties"]) >= {"title", "type", "priority", "description",
                                                                   "blocked_by"}
    assert tools["create_bead"].input_schema["required"] == ["title"]
    assert set(tools["chat_ask"].input_schema["properties"]) == {"to", "message", "wait_seconds"}
    bead = seen["bead"]
    assert bead["title"] == "MCP-made bead" and bead["issue_type"] == "bug" and bead["priority"] == 1
    assert [c["bead"] for c in seen["mine"]["claims"]] == [bead["id"]]
    # the tools write through to the worktree's beads file, as the CLI does (the claim is the last word)
    (line,) = (ann.root / ".beads" / "issues.jsonl").read_text().splitlines()
    assert json.loads(line)["id"] == bead["id"] and json.loads(line)["status"] == "in_progress"
    assert "claim" not in json.loads(line) and "repo" not in json.loads(line)
    # the refusal is the CLI's error, word for word (and the same exit-code class: a claim conflict)
    cli_refusal = ben.wire("claim", bead["id"], code=3)["error"]
    assert seen["refused"]["code"] == "claim_conflict" and seen["refused"]["message"] == cli_refusal["message"]
    assert "ann" in seen["refused"]["message"] and seen["refused"]["hint"] == cli_refusal["hint"]
    assert seen["unknown"]["code"] == "not_found" and "ben" in seen["unknown"]["message"]
    assert seen["mail"]["recipients"] == ["ben"]
    assert [(m["from"], m["subject"]) for m in seen["inbox"]] == [("ann", "review")]
    assert seen["banner"] == "banner (needs you):\nmail from ann: review\n1 unread (wire mail list)"
    # and the other agent's CLI sees the same mail
    assert [m["subject"] for m in ben.wire("mail", "list", "--unread")] == ["review"]


def test_chat_ask_blocks_until_the_other_agent_replies(pair):
    ann, ben = pair
    seen: dict[str, object] = {}

    def answer_when_asked() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = ben.wire("chat", "pending").get("waiting_on_you") or []
            if any(w.get("alias") == "ann" for w in waiting):
                ben.wire("chat", "send", "ann", "use the v2 schema")
                return
            time.sleep(0.3)

    async def body(sa, sb) -> None:
        await sa.initialize()
        await sb.initialize()
        responder = threading.Thread(target=answer_when_asked, daemon=True)
        responder.start()
        seen["reply"] = result(await sa.call_tool("chat_ask", {"to": "ben", "message": "which schema?",
                                                              "wait_seconds": 60}))
        responder.join(timeout=5)
        seen["timeout"] = error(await sa.call_tool("chat_ask", {"to": "ben", "message": "still there?",
                                                                "wait_seconds": 1}))

    run_sessions(ann, ben, body)
    assert [(m["from"], m["body"]) for m in seen["reply"]] == [("ben", "use the v2 schema")]
    assert seen["timeout"]["code"] == "wait_timeout" and seen["timeout"]["message"] == "no reply from ben within 1 s"


def test_bad_tool_input_is_a_tool_error_not_a_crash(pair):
    ann, ben = pair
    seen: dict[str, object] = {}

    async def body(sa, sb) -> None:
        await sa.initialize()
        seen["missing"] = await sa.call_tool("show_bead", {"id": "bd-999"})
        seen["empty"] = await sa.call_tool("comment", {"id": "bd-999", "text": " "})
        seen["outside"] = await sa.call_tool("lock", {"paths": ["../elsewhere.py"]})

    run_sessions(ann, ben, body)
    assert error(seen["missing"])["code"] == "not_found"
    assert error(seen["empty"]) == {"code": "usage", "message": "the comment is empty"}
    assert "outside this worktree" in error(seen["outside"])["message"]
