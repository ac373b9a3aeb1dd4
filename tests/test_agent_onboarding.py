"""An agent that follows only `/llms.txt` joins the project (issue 18, "An agent can onboard itself").

A human makes a project and a join key; the agent knows nothing but the server's URL and its
human's answers. The commands it runs are taken from the fenced code blocks of the guide itself,
with the placeholders filled in, and run with the real `wire` in a fresh git repo.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("llms-stack"), workers=1)
    yield server
    server.stop()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", "git@github.com:acme/shop.git")
    git(path, "-c", "user.name=T", "-c", "user.email=t@example.com",
        "commit", "-q", "--allow-empty", "-m", "first")
    return path


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A machine whose `wire` (on PATH) runs this checkout's code, with no server URL set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "wire"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -c "from cli import main; main()" "$@"\n')
    shim.chmod(0o755)
    out = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp_path),
           "WIRE_CONFIG_DIR": str(tmp_path / "cfg"), "CODEX_HOME": str(tmp_path / "codex"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for var in ("WIRE_URL", "WIRE_PROJECT_KEY", "WIRE_JSON", "WIRE_JOIN_KEY"):
        out.pop(var, None)
    return out


def wire(cwd: Path, env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(["wire", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=90,
                          check=False)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def sections(text: str) -> dict[str, list[str]]:
    """Heading -> the lines of the fenced code blocks under it."""
    out: dict[str, list[str]] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        out[title] = [line for block in re.findall(r"^```\n(.*?)^```$", body, flags=re.M | re.S)
                      for line in block.splitlines()]
    return out


def fill(line: str, answers: dict[str, str]) -> str:
    for placeholder, answer in answers.items():
        line = line.replace(placeholder, answer)
    assert not re.search(r"<[a-z-]+>", line), f"unanswered placeholder in {line!r}"
    return line


def test_an_agent_following_only_llms_txt_joins_the_project(stack, env, tmp_path):
    # the human: a project, then a join key for the new agent
    lead = new_repo(tmp_path / "lead")
    human_env = {**env, "WIRE_URL": stack.url}
    made = json.loads(
        wire(lead, human_env, "--json", "init", "--project", "llmsshop", "--alias", "lead").stdout)
    key = made["project_key"]
    join_key = json.loads(wire(lead, human_env, "--json", "key", "join", "--key", key).stdout)["join_key"]

    # the agent: the guide, its human's answers, the commands of the guide in a fresh repo
    with urllib.request.urlopen(f"{stack.url}/llms.txt", timeout=30) as answer:
        assert answer.headers.get_content_type() == "text/plain"
        guide = answer.read().decode()
    steps = sections(guide)
    answers = {"<project>": "llmsshop", "<name>": "newbie", "<role>": "frontend", "<human>": "Ann",
               "<join-key>": join_key, "<tool>": "claude"}
    install = next(lines for title, lines in steps.items() if title.startswith("1. Install"))
    join = next(lines for title, lines in steps.items() if title.startswith("3. Join"))
    loop = next(lines for title, lines in steps.items() if title.startswith("4. The daily loop"))
    # installed here already
    assert any(line.startswith("python3 -m pip install beadwire") for line in install)
    script = [line for line in install if line.startswith("wire ")] + [fill(line, answers) for line in join]
    script.append(next(line for line in loop if line == "wire ready"))
    assert script[1] == f"export WIRE_URL={stack.url}"
    agent = new_repo(tmp_path / "agent")
    ran = subprocess.run(["bash", "-ec", "\n".join(script)], cwd=agent, env=env, capture_output=True,
                         text=True, timeout=180, check=False)
    assert ran.returncode == 0, (script, ran.stdout, ran.stderr)
    assert "joined project llmsshop as newbie (frontend)" in ran.stdout
    assert "YOU: newbie (Ann) · frontend · project llmsshop" in ran.stdout  # wire prime
    assert "READY" in ran.stdout.split("YOU: newbie")[1]  # and wire ready, at the end
    assert (agent / ".claude" / "settings.json").is_file() and (agent / ".mcp.json").is_file()

    # registered: it knows itself, the human's team shows it, and the key is spent
    agent_env = {**env, "WIRE_URL": stack.url}
    me = json.loads(wire(agent, agent_env, "--json", "whoami").stdout)
    assert ((me["alias"], me["role"], me["human"], me["project"]["slug"])
            == ("newbie", "frontend", "Ann", "llmsshop"))
    team = json.loads(wire(lead, human_env, "--json", "status").stdout)["team"]
    assert "newbie" in {w["alias"] for w in team}
    assert wire(agent, agent_env, "ready").returncode == 0
    other = new_repo(tmp_path / "other")
    again = wire(other, agent_env, "init", "--project", "llmsshop", "--alias", "late", "--join-key", join_key,
                 code=1)
    assert "used already" in again.stderr + again.stdout


def test_a_join_key_cannot_make_a_coordinator_and_only_a_coordinator_or_the_key_makes_one(
        stack, env, tmp_path):
    lead = new_repo(tmp_path / "lead")
    human_env = {**env, "WIRE_URL": stack.url}
    made = wire(lead, human_env, "--json", "init", "--project", "llmsboss", "--alias", "lead")
    key = json.loads(made.stdout)["project_key"]
    refused = wire(lead, human_env, "key", "join", code=1)  # lead is a developer, no --key
    assert "coordinator" in refused.stderr
    join_key = json.loads(wire(lead, human_env, "--json", "key", "join", "--key", key).stdout)["join_key"]
    agent = new_repo(tmp_path / "agent")
    usage = wire(agent, human_env, "init", "--project", "llmsboss", "--role", "coordinator",
                 "--join-key", join_key, code=2)
    assert "never registers a coordinator" in usage.stderr
