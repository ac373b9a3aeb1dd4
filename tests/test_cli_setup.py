"""`wire setup claude|codex|cursor`: the files written, merged into what is there, idempotently."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from cli.client import Client
from cli.setup import BEGIN, END

FILES = {"claude": [".claude/settings.json", ".mcp.json", "CLAUDE.md"],
         "codex": [".codex/config.toml", "AGENTS.md"],
         "cursor": [".cursor/mcp.json", ".cursor/rules/beadwire.mdc"]}


@pytest.fixture
def worktree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")  # run from a subdirectory: files go to the worktree root
    return tmp_path


def setup(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["setup", *args, "--json"], obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file() and ".git/" not in
            str(p.relative_to(root)) + "/"}


@pytest.mark.parametrize("tool", sorted(FILES))
def test_setup_writes_the_files_once_and_a_second_run_changes_nothing(worktree, tool):
    first = setup(tool)
    assert [(f["path"], f["action"]) for f in first["files"]] == [(p, "create") for p in FILES[tool]]
    before = snapshot(worktree)
    second = setup(tool)
    assert {f["action"] for f in second["files"]} == {"unchanged"}
    assert snapshot(worktree) == before


def test_claude_gets_the_prime_and_banner_hooks_and_the_mcp_server(worktree):
    setup("claude")
    settings = json.loads((worktree / ".claude/settings.json").read_text())
    assert settings["hooks"]["SessionStart"][0]["hooks"][0]["command"].startswith("wire prime")
    assert "wire whoami --json" in settings["hooks"]["PostToolUse"][0]["hooks"][0]["command"]
    assert "Stop" not in settings["hooks"]
    assert json.loads((worktree / ".mcp.json").read_text())["mcpServers"]["wire"] == {"command": "wire",
                                                                                   "args": ["mcp"]}
    assert "wire prime" in (worktree / "CLAUDE.md").read_text()
    setup("claude", "--watch")
    stop = json.loads((worktree / ".claude/settings.json").read_text())["hooks"]["Stop"]
    assert "wire watch --ready" in stop[0]["hooks"][0]["command"]  # new ready work wakes an idle agent too


def test_existing_config_is_merged_not_replaced(worktree):
    (worktree / ".claude").mkdir()
    mine = {"matcher": "Bash", "hooks": [{"type": "command", "command": "./lint.sh"}]}
    (worktree / ".claude/settings.json").write_text(json.dumps(
        {"model": "opus", "hooks": {"PostToolUse": [mine],
                                    "SessionStart": [{"hooks": [{"type": "command", "command": "wire prime --old"}]}]}}))
    (worktree / ".mcp.json").write_text(json.dumps({"mcpServers": {"db": {"command": "dbtool"}}}))
    (worktree / "CLAUDE.md").write_text("# Project\n\nUse tabs.\n")
    setup("claude")
    settings = json.loads((worktree / ".claude/settings.json").read_text())
    assert settings["model"] == "opus"
    assert settings["hooks"]["PostToolUse"][0] == mine and len(settings["hooks"]["PostToolUse"]) == 2
    assert [g["hooks"][0]["command"] for g in settings["hooks"]["SessionStart"]] == ["wire prime 2>&1; exit 0"]
    assert set(json.loads((worktree / ".mcp.json").read_text())["mcpServers"]) == {"db", "wire"}
    text = (worktree / "CLAUDE.md").read_text()
    assert text.startswith("# Project\n\nUse tabs.\n") and text.count(BEGIN) == 1 and text.count(END) == 1


def test_the_markdown_section_is_replaced_in_place(worktree):
    (worktree / "AGENTS.md").write_text(f"# Top\n\n{BEGIN}\nold instructions\n{END}\n\n## After\nkeep me\n")
    setup("codex")
    text = (worktree / "AGENTS.md").read_text()
    assert "old instructions" not in text and "wire prime" in text
    assert text.startswith("# Top\n\n") and text.endswith("## After\nkeep me\n") and text.count(BEGIN) == 1


def test_codex_config_keeps_other_tables(worktree):
    (worktree / ".codex").mkdir()
    (worktree / ".codex/config.toml").write_text('model = "o3"\n\n[mcp_servers.wire]\ncommand = "old"\n\n'
                                                '[mcp_servers.other]\ncommand = "x"\n')
    setup("codex")
    config = tomllib.loads((worktree / ".codex/config.toml").read_text())
    assert config["model"] == "o3" and config["mcp_servers"]["other"] == {"command": "x"}
    assert config["mcp_servers"]["wire"] == {"command": "wire", "args": ["mcp"]}
    assert {f["action"] for f in setup("codex")["files"]} == {"unchanged"}


def test_dry_run_shows_the_content_and_writes_nothing(worktree):
    (worktree / "CLAUDE.md").write_text("# mine\n")
    shown = setup("claude", "--dry-run")
    assert shown["dry_run"] and {f["path"]: f["action"] for f in shown["files"]} == {
        ".claude/settings.json": "create", ".mcp.json": "create", "CLAUDE.md": "update"}
    assert "wire prime" in next(f["content"] for f in shown["files"] if f["path"] == "CLAUDE.md")
    assert snapshot(worktree) == {"CLAUDE.md": "# mine\n"}
    text = CliRunner().invoke(cli, ["setup", "cursor", "--dry-run"], obj=Client("http://127.0.0.1:1", token="t"))
    assert "would write .cursor/rules/beadwire.mdc (create)" in text.output and "alwaysApply: true" in text.output
    assert not (worktree / ".cursor").exists()


def test_a_config_file_that_cannot_be_parsed_is_left_alone_with_a_message(worktree):
    (worktree / ".mcp.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["setup", "claude"], obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 1 and "not JSON" in result.output
    assert (worktree / ".mcp.json").read_text() == "{not json" and not (worktree / "CLAUDE.md").exists()
