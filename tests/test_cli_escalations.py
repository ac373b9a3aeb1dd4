"""`wire escalate`, `wire respond`, `wire escalations` and `wire policy` as agents and humans run them:
real git worktrees, a real `wire serve` stack, subprocesses (slow); plus the CLI's pure helpers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import pytest

from cli.escalations import duration
from cli.policy import bundle_body
from tests.test_cli_e2e import Wire, agents, stack  # noqa: F401  (fixtures)

#: Seconds the answer may take to travel server -> worker -> mailbox -> banner.
DEFAULT_POLL_TIMEOUT = 30.0


@pytest.fixture
def clones(agents):  # noqa: F811 - the fixture imported above
    """clones(n) -> n agents in clones of one origin, on this module's `wire serve` stack."""
    return agents


def project_key(wire: Wire) -> str:
    keys = json.loads((Path(wire.env["WIRE_CONFIG_DIR"]) / "keys.json").read_text())
    return next(iter(keys.values()))


def token(wire: Wire) -> str:
    return json.loads((wire.cwd / ".wire" / "workspace.json").read_text())["token"]


def human(wire: Wire, tmp_path: Path) -> Wire:
    """A person at a desk: no worktree, just the server URL and the project key in the environment."""
    desk = tmp_path / "desk"
    desk.mkdir(exist_ok=True)
    return Wire(desk, {**wire.env, "WIRE_PROJECT_KEY": project_key(wire),
                       "WIRE_CONFIG_DIR": str(tmp_path / "hcfg")})


def wait_for_banner(wire: Wire, needle: str) -> str:
    """Run `wire whoami` until its banner (stderr) shows `needle`; the line that did."""
    deadline = time.monotonic() + DEFAULT_POLL_TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        stderr = wire("whoami").stderr
        seen.append(stderr)
        for line in stderr.splitlines():
            if needle in line:
                return line
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} never showed in the banner: {seen[-3:]}")


@pytest.mark.slow
def test_an_agent_escalates_a_human_responds_and_the_answer_shows_in_the_agents_banner(clones, tmp_path):
    alice, bob = clones(2)
    bead = alice.json("create", "Orders cleanup")["id"]
    alice("claim", bead)
    (alice.cwd / "notes.txt").write_text("draft")
    alice("lock", "db/migrations/**", "--reason", "migration 42")
    bob("mail", "send", "clone-agent0", "[orders] finance still reads that table")
    esc = alice.json("escalate", "Drop the legacy orders table?",
                     "Migration 42 needs it gone; renaming failed.",
                     "--option", "A: drop it", "--option", "B: keep it", "--severity", "high",
                     "--expires-in", "2h")
    context = esc["context"]
    assert esc["status"] == "pending" and esc["severity"] == "high"
    assert context["branch"] == "main" and context["git_status"]["files"] == ["?? notes.txt"]
    assert [c["bead"] for c in context["claims"]] == [bead]
    assert [r["pattern"] for r in context["reservations"]] == ["db/migrations/**"]
    assert context["recent_messages"][0]["body"] == "[orders] finance still reads that table"
    text = alice("escalate", "Second question", "-", stdin="What now?\n").stdout
    assert text.startswith(f"escalation #{esc['id'] + 1} raised (normal, expires in 3h 59m)")

    refused = alice("respond", str(esc["id"]), "A: drop it", code=1)  # no key at all
    assert "project key" in refused.stderr
    as_agent = alice("respond", str(esc["id"]), "A: drop it", "--key", token(alice), code=1)
    assert "workspace token acts only as its workspace" in as_agent.stderr and "hint:" in as_agent.stderr

    desk = human(alice, tmp_path)
    listed = desk.json("escalations", "--status", "pending")
    assert [e["id"] for e in listed] == [esc["id"] + 1, esc["id"]]
    assert "Drop the legacy orders table?" in desk("escalations").stdout
    shown = desk("escalations", "show", str(esc["id"])).stdout
    assert "1. A: drop it" in shown and f"holds {bead}" in shown and "1 untracked" in shown
    assert "reserves db/migrations/**" in shown
    answered = desk("respond", str(esc["id"]), "B: keep it", "--note", "finance reads it", "--by", "Dana")
    assert answered.stdout.startswith(f"answered #{esc['id']}; clone-agent0 sees it in its banner")
    assert desk("respond", str(esc["id"]), "again", code=3).returncode == 3

    line = wait_for_banner(alice, f"escalation #{esc['id']} answered")
    assert line == f"notice: escalation #{esc['id']} answered by Dana: B: keep it (note: finance reads it)"
    assert "answer by Dana: B: keep it" in alice("escalations", "show", str(esc["id"])).stdout
    assert [e["id"] for e in alice.json("escalations", "--status", "answered")] == [esc["id"]]
    assert bob.json("escalations") == []  # an agent sees its own


@pytest.mark.slow
def test_humans_configure_the_webhook_from_the_command_line(clones, tmp_path):
    (alice,) = clones(1)
    desk = human(alice, tmp_path)
    assert "no webhook configured" in desk("escalations", "webhook").stdout
    assert desk.json("escalations", "webhook", "https://hooks.example/x")["url"] == "https://hooks.example/x"
    assert "hooks.example" in desk("escalations", "webhook").stdout
    refused = alice("escalations", "webhook", "https://evil.example", "--key", token(alice), code=1)
    assert refused.returncode == 1
    assert desk.json("escalations", "webhook", "--remove")["url"] is None


@pytest.mark.slow
def test_agents_read_their_policy_with_a_cache_and_only_humans_change_it(clones, tmp_path):
    alice, bob = clones(2)
    shown = alice("policy").stdout
    assert shown.startswith("policy v1 (default) · role developer")
    assert "# Invariants" in shown and "# Playbook: developer" in shown and "wire claim" in shown
    cache = json.loads((alice.cwd / ".wire" / "policy.json").read_text())
    assert cache["version"] == 1 and cache["etag"]
    assert alice.json("policy")["etag"] == cache["etag"]  # a 304: the cache answers
    offline = Wire(alice.cwd, {**alice.env, "WIRE_URL": "http://127.0.0.1:9"})("policy")
    assert "showing the cached policy v1" in offline.stderr and "# Playbook: developer" in offline.stdout
    assert "# Playbook: coordinator" in alice("policy", "--role", "coordinator").stdout

    bundle = tmp_path / "policy.md"
    bundle.write_text("# Invariants\n\nTests first.\n\n# Role: developer\n\nSmall commits.\n")
    assert "project key" in alice("policy", "set", str(bundle), code=1).stderr
    assert alice("policy", "set", str(bundle), "--key", token(alice), code=1).returncode == 1
    desk = human(alice, tmp_path)
    assert desk("policy", "set", str(bundle)).stdout.startswith("policy v2 is active")
    wait_for_banner(bob, "policy v2 is now active")
    assert "Small commits." in alice("policy").stdout
    assert json.loads((alice.cwd / ".wire" / "policy.json").read_text())["version"] == 2
    assert [v["version"] for v in alice.json("policy", "history")] == [2, 1]
    exported = desk("policy", "export").stdout
    assert exported.startswith("# Invariants\n\nTests first.")
    desk("policy", "activate", "1")
    assert alice.json("policy")["version"] == 1
    assert desk.json("policy", "reset")["created"] is False  # v1 is the defaults already


def test_durations_are_seconds_minutes_hours_or_days():
    assert [duration(v) for v in ("90", "90s", "30m", "4h", "1d")] == [90, 90, 1800, 14400, 86400]
    with pytest.raises(click.BadParameter):
        duration("soon")


def test_policy_files_are_markdown_unless_they_are_json():
    assert bundle_body("# Invariants\nx", "p.md") == {"markdown": "# Invariants\nx"}
    exported = json.dumps({"version": 3, "etag": "e", "invariants": "x", "playbooks": {"dev": "y"},
                           "markdown": "m"})
    assert bundle_body(exported, "p.json") == {"invariants": "x", "playbooks": {"dev": "y"}}
    with pytest.raises(click.UsageError):
        bundle_body('{"other": 1}', "p.json")
