"""`wire mcp` driven by the official MCP SDK's stdio client, against a real `wire serve` stack.

Two agents, each in its own git worktree with its own `wire mcp` process: A creates a bead and
claims it, B's claim is refused with the CLI's own message (in the tool's words), A mails B and B
reads it, A's chat_ask blocks until B answers. On a seeded project every tool answers with the
CLI's text, no longer than what `wire` prints; `json=true` gives the API's JSON.
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
TOOLS = {"whoami", "status", "prime", "handoff", "ready", "list_beads", "search", "show_bead", "deps",
         "create_bead", "assign", "wait_ready", "claim", "release", "close_bead", "comment", "send_mail",
         "check_inbox", "ack_mail", "watch", "chat_ask", "chat_reply", "chat_pending", "lock", "unlock",
         "locks", "escalate", "policy", "history"}
#: Most characters a tool's answer may take per character of the CLI's text for the same state (issue 18).
SIZE_FACTOR = 1.2
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
        return json.loads(self.text("--json", *args, code=code))

    def text(self, *args: str, code: int = 0) -> str:
        """What `wire ARGS` prints on stdout (the human text unless ARGS ask for JSON)."""
        proc = subprocess.run([sys.executable, "-c", "from cli import main; main()", *args],
                              cwd=self.root, env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=90, check=False)
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout

    def server(self):
        from mcp import StdioServerParameters

        return StdioServerParameters(command=sys.executable,
                                     args=["-c", "from cli import main; main()", "mcp"],
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
    """The JSON answer of a successful tool call made with json=true."""
    assert not call.is_error, call.content
    return json.loads(call.content[0].text)


def text(call) -> str:
    """The text answer of a successful tool call (the CLI's rendering)."""
    assert not call.is_error, call.content
    return call.content[0].text


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
        seen["server"] = init.server_info
        tools = (await sa.list_tools()).tools
        seen["tools"] = {t.name: t for t in tools}
        made = {"title": "MCP-made bead", "type": "bug", "priority": "1", "json": True}
        bead = result(await sa.call_tool("create_bead", made))
        seen["bead"] = bead
        seen["claim"] = text(await sa.call_tool("claim", {"id": bead["id"]}))
        seen["refused"] = error(await sb.call_tool("claim", {"id": bead["id"]}))
        seen["unknown"] = error(await sa.call_tool("send_mail", {"to": "bem", "body": "hi"}))
        seen["mail"] = result(await sa.call_tool("send_mail", {"to": "ben", "subject": "review", "json": True,
                                                              "body": f"please review {bead['id']}"}))
        seen["banner"] = await banner_of(sb)
        seen["inbox"] = result(await sb.call_tool("check_inbox", {"json": True}))
        seen["inbox_text"] = text(await sb.call_tool("check_inbox", {}))
        seen["mine"] = result(await sa.call_tool("whoami", {"json": True}))

    run_sessions(ann, ben, body)
    from importlib import metadata

    assert seen["server"].name == "beadwire"
    # the server says which beadwire it is (it used to say "")
    assert seen["server"].version and seen["server"].version == metadata.version("beadwire")
    tools = seen["tools"]
    assert set(tools) >= TOOLS
    for tool in tools.values():
        assert tool.description and "\n" not in tool.description and tool.input_schema["type"] == "object"
        assert tool.input_schema["properties"]["json"] == {
            "default": False, "description": "Answer with the API's full JSON instead of the CLI's text.",
            "title": "Json", "type": "boolean"}
    assert set(tools["create_bead"].input_schema["properties"]) >= {
        "title", "type", "priority", "description", "blocked_by"}
    assert tools["create_bead"].input_schema["required"] == ["title"]
    assert set(tools["chat_ask"].input_schema["properties"]) == {"to", "message", "wait_seconds", "json"}
    bead = seen["bead"]
    assert bead["title"] == "MCP-made bead" and bead["issue_type"] == "bug" and bead["priority"] == 1
    assert [c["bead"] for c in seen["mine"]["claims"]] == [bead["id"]]
    # the tools write through to the worktree's beads file, as the CLI does (the claim is the last word)
    (line,) = (ann.root / ".beads" / "issues.jsonl").read_text().splitlines()
    assert json.loads(line)["id"] == bead["id"] and json.loads(line)["status"] == "in_progress"
    assert "claim" not in json.loads(line) and "repo" not in json.loads(line)
    assert seen["claim"] == f"claimed {bead['id']}: MCP-made bead"
    # the refusal is the CLI's error (the same exit-code class: a claim conflict), in the tool's words:
    # its argument instead of the CLI's flag, the tool instead of the command
    cli_refusal = ben.wire("claim", bead["id"], code=3)["error"]
    assert seen["refused"]["code"] == "claim_conflict"
    assert seen["refused"]["message"] == cli_refusal["message"]
    assert "ann" in seen["refused"]["message"] and "--jump-in REASON" in cli_refusal["hint"]
    assert seen["refused"]["hint"] == (
        cli_refusal["hint"].replace("--jump-in REASON", "jump_in=REASON").replace("'wire ready'", "'ready'"))
    assert seen["unknown"]["code"] == "not_found" and "ben" in seen["unknown"]["message"]
    assert seen["mail"]["recipients"] == ["ben"]
    assert [(m["from"], m["subject"]) for m in seen["inbox"]] == [("ann", "review")]
    assert seen["inbox_text"] == ben.text("mail", "list", "--unread").rstrip("\n")
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
        seen["reply"] = text(await sa.call_tool("chat_ask", {"to": "ben", "message": "which schema?",
                                                            "wait_seconds": 60}))
        responder.join(timeout=5)
        seen["timeout"] = error(await sa.call_tool("chat_ask", {"to": "ben", "message": "still there?",
                                                                "wait_seconds": 1}))

    run_sessions(ann, ben, body)
    assert seen["reply"] == "ben: use the v2 schema"
    assert seen["timeout"]["code"] == "wait_timeout"
    assert seen["timeout"]["message"] == "no reply from ben within 1 s"


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


def test_wrong_argument_types_get_the_documented_error_form(pair):
    ann, ben = pair
    calls = {"ready": {"limit": "many"}, "claim": {"id": ["bd-1", "bd-2"]}, "lock": {"paths": "src/a.py"},
             "create_bead": {"type": "bug"}}
    seen: dict[str, object] = {}

    async def body(sa, sb) -> None:
        await sa.initialize()
        for tool, arguments in calls.items():
            seen[tool] = await sa.call_tool(tool, arguments)

    run_sessions(ann, ben, body)
    for tool in calls:
        call = seen[tool]
        assert call.is_error and len(call.content) == 1
        # not pydantic's "1 validation error for ..."
        assert set(json.loads(call.content[0].text)) == {"error"}
        assert error(call)["code"] == "usage"
        assert error(call)["message"].startswith(f"wrong arguments for {tool}: ")
    assert error(seen["ready"])["message"] == (
        "wrong arguments for ready: limit: Input should be a valid integer, "
        "unable to parse string as an integer")
    assert error(seen["ready"])["hint"] == ("ready takes limit (integer), explain (string or null), "
                                            "role (string or null), json (boolean)")
    assert error(seen["claim"])["message"] == "wrong arguments for claim: id: Input should be a valid string"
    assert error(seen["lock"])["message"] == "wrong arguments for lock: paths: Input should be a valid list"
    assert error(seen["create_bead"])["message"] == "wrong arguments for create_bead: title: Field required"


def seed(ann: Agent, ben: Agent) -> list[str]:
    """A small project as a team has it: beads of every kind, a dependency, a comment, claims by both
    agents, mail, a handoff. Returns the bead ids (the first is ann's claim)."""
    ids = []
    for title, kind, priority in [("Cart total rounds down on discounts", "bug", "1"),
                                  ("Orders migration to v2 schema", "task", "2"),
                                  ("Checkout page loads slowly on mobile", "bug", "0"),
                                  ("Add CSV export of invoices", "feature", "3"),
                                  ("Refactor payment gateway adapter", "chore", "2"),
                                  ("Fix flaky test_orders fixture", "bug", "1")]:
        ids.append(ann.wire("create", title, "-t", kind, "-p", priority, "-l", "shop",
                            "-d", f"{title}: steps to reproduce, expected and actual.")["id"])
    ann.wire("link", ids[1], "--blocked-by", ids[5])
    ann.wire("comment", ids[0], "reproduced with a 15% coupon on a 9.99 item")
    ann.wire("claim", ids[0])
    ben.wire("claim", ids[2])
    ben.wire("mail", "send", "ann", "can you look at the rounding first?", "-s", "rounding")
    ann.wire("handoff", "migration written, test_orders still fails; next: fix the fixture")
    ann.wire("mail", "list")  # shows the banner once, as an agent's next command would
    return ids


def without_ages(text: str) -> str:
    """The text with its `5m ago` / `just now` ages blanked (the two answers are seconds apart)."""
    import re

    return re.sub(r"just now|\d+[mhd] ago", "AGO", text)


def test_tool_answers_are_the_cli_s_text_and_no_longer(pair):
    ann, ben = pair
    ids = seed(ann, ben)
    cases = {"ready": ({}, ["ready"]), "prime": ({}, ["prime"]), "status": ({}, ["status"]),
             "show_bead": ({"id": ids[0]}, ["show", ids[0]])}
    cli = {tool: ann.text(*args) for tool, (_, args) in cases.items()}
    seen: dict[str, object] = {}

    async def body(sa, sb) -> None:
        await sa.initialize()
        for tool, (arguments, _) in cases.items():
            call = await sa.call_tool(tool, arguments)
            assert not call.is_error, call.content
            seen[tool] = "\n".join(block.text for block in call.content)
        seen["json"] = result(await sa.call_tool("ready", {"json": True}))

    run_sessions(ann, ben, body)
    for tool in cases:
        assert len(seen[tool]) <= SIZE_FACTOR * len(cli[tool]), (tool, len(seen[tool]), len(cli[tool]))
        assert without_ages(seen[tool]) == without_ages(cli[tool]).rstrip("\n")
    assert f"{ids[0]}  Cart total rounds down on discounts" in seen["show_bead"]
    assert "RESUME FIRST (your claims):" in seen["prime"] and "ONLINE: ben" in seen["prime"]
    # the full JSON is still there for a tool that asks
    assert [b["id"] for b in seen["json"]] == [b["id"] for b in ann.wire("ready")]


def test_search_deps_assign_explain_and_watch(pair):
    ann, ben = pair
    flaky = ann.wire("create", "Fix the flaky fixture", "-t", "bug")["id"]
    blocked = ann.wire("create", "Orders migration", "--blocked-by", flaky)["id"]
    cli = {"search": ann.text("search", "flaky"), "deps": ann.text("deps", blocked),
           "explain": ann.text("ready", "--explain", blocked)}
    seen: dict[str, object] = {}

    async def body(sa, sb) -> None:
        await sa.initialize()
        await sb.initialize()
        seen["search"] = text(await sa.call_tool("search", {"text": "flaky"}))
        seen["deps"] = text(await sa.call_tool("deps", {"id": blocked}))
        seen["explain"] = text(await sa.call_tool("ready", {"explain": blocked}))
        seen["assign"] = text(await sa.call_tool("assign", {"id": flaky, "alias": "ben"}))
        seen["assignee"] = ann.wire("show", flaky)["assignee"]
        await sa.call_tool("assign", {"id": blocked, "alias": "ben"})
        seen["unassign"] = text(await sa.call_tool("assign", {"id": blocked, "alias": ""}))
        seen["quiet"] = await sb.call_tool("watch", {"timeout": 1})
        mail = threading.Timer(
            1.0, lambda: ann.wire("mail", "send", "ben", "the fixture is yours", "-s", "fixture"))
        mail.start()
        seen["woken"] = text(await sb.call_tool("watch", {"timeout": 30}))
        seen["big"] = await sb.call_tool("watch", {"timeout": 3600})
        seen["not_yet"] = await sb.call_tool("wait_ready", {"id": blocked, "timeout": 1})
        close = threading.Timer(1.0, lambda: ann.wire("close", flaky))
        close.start()
        seen["ready"] = text(await sb.call_tool("wait_ready", {"id": blocked, "timeout": 30}))

    run_sessions(ann, ben, body)
    for tool in cli:
        assert seen[tool] == cli[tool].rstrip("\n")
    assert flaky in seen["search"] and blocked not in seen["search"]
    assert seen["deps"].startswith(f"blocked by:\n  {flaky}  open  Fix the flaky fixture")
    assert seen["explain"].startswith(f"{blocked} is not ready:")
    assert seen["assign"] == f"updated {flaky}: Fix the flaky fixture"
    assert seen["assignee"] == "ben" and ann.wire("show", flaky)["assignee"] == "ben"
    assert seen["unassign"] == f"updated {blocked}: Orders migration"
    assert not ann.wire("show", blocked)["assignee"]
    assert error(seen["quiet"]) == {"code": "wait_timeout", "message": "nothing arrived within 1 s",
                                    "wait": 1, "cursor": None}
    assert seen["woken"].splitlines() == ["woke: mail from ann", "mail from ann: fixture",
                                          "-> read mail and notices: wire mail open"]
    not_yet = error(seen["not_yet"])
    assert not_yet["code"] == "wait_timeout" and f"blocked by {flaky}" in not_yet["message"]
    assert seen["ready"].splitlines() == [f"{blocked} is ready: Orders migration",
                                          f"-> take it: wire claim {blocked}"]
    assert error(seen["big"])["code"] == "usage" and "timeout" in error(seen["big"])["message"]


def test_history_tells_who_claimed_and_closed_a_bead_as_the_cli_does(pair):
    ann, ben = pair
    bead = ann.wire("create", "Fix the login page")["id"]
    seen: dict[str, object] = {}

    async def body(sa, sb) -> None:
        await sa.initialize()
        await sb.initialize()
        await sb.call_tool("claim", {"id": bead})
        await sb.call_tool("close_bead", {"id": bead, "reason": "done"})
        seen["json"] = result(await sa.call_tool("history", {"id": bead, "json": True}))
        seen["text"] = text(await sa.call_tool("history", {"id": bead}))
        seen["unknown"] = error(await sa.call_tool("history", {"id": "bd-nope"}))

    run_sessions(ann, ben, body)
    kinds = [(c["who"], c["kind"]) for c in seen["json"]]
    assert kinds[:2] == [("ben", "bead.closed"), ("ben", "claim.created")]
    assert ("ann", "bead.created") in kinds
    assert seen["json"] == ann.wire("history", bead)
    assert seen["text"] == ann.text("history", bead).rstrip("\n")
    assert seen["text"].splitlines()[0].split()[2:5] == ["ben", "bead.closed", "reason=done"]
    assert seen["unknown"]["code"] == "not_found"
