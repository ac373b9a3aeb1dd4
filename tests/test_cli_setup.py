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

FILES = {"claude": [".claude/settings.json", ".mcp.json", ".claude/settings.local.json", "CLAUDE.md"],
         "codex": [".codex/config.toml", ".codex/hooks.json", "AGENTS.md"],
         "cursor": [".cursor/mcp.json", ".cursor/rules/beadwire.mdc"]}


@pytest.fixture
def worktree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    monkeypatch.setenv("CODEX_HOME", str(tmp_path.parent / f"{tmp_path.name}-codex"))  # never the user's own
    monkeypatch.chdir(tmp_path / "src")  # run from a subdirectory: files go to the worktree root
    return tmp_path


def wire_setup(*args: str) -> dict:
    """`wire setup ARGS --json`, answered (not named `setup`: pytest 8.0 runs a module's `setup()` first)."""
    result = CliRunner().invoke(cli, ["setup", *args, "--json"], obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file() and ".git/" not in
            str(p.relative_to(root)) + "/"}


@pytest.mark.parametrize("tool", sorted(FILES))
def test_setup_writes_the_files_once_and_a_second_run_changes_nothing(worktree, tool):
    first = wire_setup(tool)
    assert [(f["path"], f["action"]) for f in first["files"]] == [(p, "create") for p in FILES[tool]]
    before = snapshot(worktree)
    second = wire_setup(tool)
    assert {f["action"] for f in second["files"]} == {"unchanged"}
    assert snapshot(worktree) == before


def test_claude_gets_the_prime_and_banner_hooks_and_the_mcp_server(worktree):
    wire_setup("claude")
    settings = json.loads((worktree / ".claude/settings.json").read_text())
    assert settings["hooks"]["SessionStart"][0]["hooks"][0]["command"].startswith("wire prime")
    assert "wire whoami --json" in settings["hooks"]["PostToolUse"][0]["hooks"][0]["command"]
    assert "Stop" not in settings["hooks"]
    assert json.loads((worktree / ".mcp.json").read_text())["mcpServers"]["wire"] == {"command": "wire",
                                                                                   "args": ["mcp"]}
    assert "wire prime" in (worktree / "CLAUDE.md").read_text()
    wire_setup("claude", "--watch")
    stop = json.loads((worktree / ".claude/settings.json").read_text())["hooks"]["Stop"]
    assert "wire watch --ready" in stop[0]["hooks"][0]["command"]  # new ready work wakes an idle agent too


def test_existing_config_is_merged_not_replaced(worktree):
    (worktree / ".claude").mkdir()
    mine = {"matcher": "Bash", "hooks": [{"type": "command", "command": "./lint.sh"}]}
    old_prime = {"hooks": [{"type": "command", "command": "wire prime --old"}]}
    (worktree / ".claude/settings.json").write_text(json.dumps(
        {"model": "opus", "hooks": {"PostToolUse": [mine], "SessionStart": [old_prime]}}))
    (worktree / ".mcp.json").write_text(json.dumps({"mcpServers": {"db": {"command": "dbtool"}}}))
    (worktree / "CLAUDE.md").write_text("# Project\n\nUse tabs.\n")
    wire_setup("claude")
    settings = json.loads((worktree / ".claude/settings.json").read_text())
    assert settings["model"] == "opus"
    assert settings["hooks"]["PostToolUse"][0] == mine and len(settings["hooks"]["PostToolUse"]) == 2
    assert ([g["hooks"][0]["command"] for g in settings["hooks"]["SessionStart"]]
            == ["wire prime 2>&1; exit 0"])
    assert set(json.loads((worktree / ".mcp.json").read_text())["mcpServers"]) == {"db", "wire"}
    text = (worktree / "CLAUDE.md").read_text()
    assert text.startswith("# Project\n\nUse tabs.\n") and text.count(BEGIN) == 1 and text.count(END) == 1


def test_the_markdown_section_is_replaced_in_place(worktree):
    (worktree / "AGENTS.md").write_text(f"# Top\n\n{BEGIN}\nold instructions\n{END}\n\n## After\nkeep me\n")
    wire_setup("codex")
    text = (worktree / "AGENTS.md").read_text()
    assert "old instructions" not in text and "wire prime" in text
    assert text.startswith("# Top\n\n") and text.endswith("## After\nkeep me\n") and text.count(BEGIN) == 1


def test_codex_config_keeps_other_tables(worktree):
    (worktree / ".codex").mkdir()
    (worktree / ".codex/config.toml").write_text('model = "o3"\n\n[mcp_servers.wire]\ncommand = "old"\n\n'
                                                '[mcp_servers.other]\ncommand = "x"\n')
    wire_setup("codex")
    config = tomllib.loads((worktree / ".codex/config.toml").read_text())
    assert config["model"] == "o3" and config["mcp_servers"]["other"] == {"command": "x"}
    assert config["mcp_servers"]["wire"] == {"command": "wire", "args": ["mcp"]}
    assert {f["action"] for f in wire_setup("codex")["files"]} == {"unchanged"}


def test_dry_run_shows_the_content_and_writes_nothing(worktree):
    (worktree / "CLAUDE.md").write_text("# mine\n")
    shown = wire_setup("claude", "--dry-run")
    assert shown["dry_run"] and {f["path"]: f["action"] for f in shown["files"]} == {
        ".claude/settings.json": "create", ".mcp.json": "create", ".claude/settings.local.json": "create",
        "CLAUDE.md": "update"}
    assert "wire prime" in next(f["content"] for f in shown["files"] if f["path"] == "CLAUDE.md")
    assert snapshot(worktree) == {"CLAUDE.md": "# mine\n"}
    text = CliRunner().invoke(cli, ["setup", "cursor", "--dry-run"],
                              obj=Client("http://127.0.0.1:1", token="t"))
    assert ("would write .cursor/rules/beadwire.mdc (create)" in text.output
            and "alwaysApply: true" in text.output)
    assert not (worktree / ".cursor").exists()


def test_a_config_file_that_cannot_be_parsed_is_left_alone_with_a_message(worktree):
    (worktree / ".mcp.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["setup", "claude"], obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 1 and "not JSON" in result.output
    assert (worktree / ".mcp.json").read_text() == "{not json" and not (worktree / "CLAUDE.md").exists()


# -- what the real tools need beyond the files (issue 18) ------------------------------------

def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_claude_approves_the_server_in_the_personal_settings_kept_out_of_git(worktree):
    (worktree / ".claude").mkdir()
    (worktree / ".claude/settings.local.json").write_text(json.dumps(
        {"permissions": {"allow": ["Bash(ls)"]}, "enabledMcpjsonServers": ["db"]}))
    result = wire_setup("claude")
    local = json.loads((worktree / ".claude/settings.local.json").read_text())
    assert local == {"permissions": {"allow": ["Bash(ls)"]}, "enabledMcpjsonServers": ["db", "wire"]}
    assert any("enabledMcpjsonServers" in n and "pending approval" in n for n in result["notes"])
    assert ".claude/settings.local.json" in (worktree / ".git/info/exclude").read_text().splitlines()
    assert git(worktree, "status", "--porcelain", "--untracked-files=all",
               ".claude/settings.local.json") == ""
    wire_setup("claude")
    assert (worktree / ".git/info/exclude").read_text().count(".claude/settings.local.json") == 1


def test_in_a_linked_worktree_the_exclusion_goes_to_the_shared_git_dir(worktree, monkeypatch):
    git(worktree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    linked = worktree.parent / f"{worktree.name}-linked"
    git(worktree, "worktree", "add", "-q", str(linked))
    monkeypatch.chdir(linked)
    wire_setup("claude")
    assert (linked / ".claude/settings.local.json").is_file()
    assert ".claude/settings.local.json" in (worktree / ".git/info/exclude").read_text().splitlines()
    assert git(linked, "status", "--porcelain", "--untracked-files=all",
               ".claude").count("settings.local") == 0


def test_the_watch_hook_waits_for_ready_work(worktree):
    wire_setup("claude", "--watch")
    stop = json.loads((worktree / ".claude/settings.json").read_text())["hooks"]["Stop"]
    assert len(stop) == 1 and stop[0]["hooks"][0]["command"].startswith("wire watch --ready --timeout 540")


def test_codex_gets_a_session_start_hook_and_is_told_it_must_trust_the_project(worktree, monkeypatch):
    result = CliRunner().invoke(cli, ["setup", "codex"], obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 0, result.output
    hooks = json.loads((worktree / ".codex/hooks.json").read_text())["hooks"]
    assert hooks["SessionStart"][0]["hooks"][0]["command"].startswith("wire prime")
    assert "NOT TRUSTED" in result.output and "wire setup codex --trust" in result.output
    assert "SessionStart hook (.codex/hooks.json) runs `wire prime`" in result.output


def test_codex_trust_appends_a_table_and_keeps_the_users_config(worktree):
    import os

    home = Path(os.environ["CODEX_HOME"])
    home.mkdir()
    mine = 'model = "o3"  # my model\n\n[projects."/elsewhere"]\ntrust_level = "untrusted"\n'
    (home / "config.toml").write_text(mine)
    first = wire_setup("codex", "--trust")
    text = (home / "config.toml").read_text()
    assert first["trusted"] and text.startswith(mine)
    projects = tomllib.loads(text)["projects"]
    assert (projects[str(worktree.resolve())] == {"trust_level": "trusted"}
            and projects["/elsewhere"]["trust_level"])
    again = wire_setup("codex", "--trust")
    assert again["trusted"] and (home / "config.toml").read_text() == text
    assert any("Codex trusts this project" in n for n in again["notes"])


def test_codex_already_trusted_by_the_user_is_not_told_otherwise(worktree):
    import os

    home = Path(os.environ["CODEX_HOME"])
    home.mkdir()
    (home / "config.toml").write_text(
        f'[projects.{json.dumps(str(worktree.resolve()))}]\ntrust_level = "trusted"\n')
    result = wire_setup("codex")
    assert result["trusted"] and not any("NOT TRUSTED" in n for n in result["notes"])


def test_cursor_is_not_promised_a_start_hook(worktree):
    result = CliRunner().invoke(cli, ["setup", "cursor"], obj=Client("http://127.0.0.1:1", token="t"))
    assert "Cursor has no start hook" in result.output and "its SessionStart hook" not in result.output


def test_without_wire_on_path_the_tools_get_its_absolute_path(worktree, monkeypatch, tmp_path_factory):
    import shutil
    import sys

    bin_dir = tmp_path_factory.mktemp("venv bin")
    fake = bin_dir / "wire"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setattr(sys, "argv", [str(fake), "setup"])
    result = wire_setup("claude")
    servers = json.loads((worktree / ".mcp.json").read_text())["mcpServers"]
    assert servers["wire"]["command"] == str(fake.resolve())
    prime = json.loads((worktree / ".claude/settings.json").read_text())["hooks"]["SessionStart"]
    assert prime[0]["hooks"][0]["command"] == f"'{fake.resolve()}' prime 2>&1; exit 0"  # quoted: a space
    assert any("not on PATH" in n for n in result["notes"])
    wire_setup("claude")  # a second run recognises the hooks by path and replaces them
    assert len(json.loads((worktree / ".claude/settings.json").read_text())["hooks"]["SessionStart"]) == 1
    wire_setup("codex")
    config = tomllib.loads((worktree / ".codex/config.toml").read_text())
    assert config["mcp_servers"]["wire"]["command"] == str(fake.resolve())


def test_without_wire_anywhere_setup_warns(worktree, monkeypatch, tmp_path_factory):
    import shutil
    import sys

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setattr(sys, "argv", ["python", "-m", "cli"])
    monkeypatch.setattr(sys, "executable", str(tmp_path_factory.mktemp("nobin") / "python"))
    result = CliRunner().invoke(cli, ["setup", "claude"], obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 0 and "WARNING: `wire` is not on PATH" in result.output


def test_a_hook_that_merely_mentions_wire_is_not_taken_for_ours(worktree):
    (worktree / ".claude").mkdir()
    theirs = {"hooks": [{"type": "command", "command": "echo wire done"}]}
    (worktree / ".claude/settings.json").write_text(json.dumps({"hooks": {"SessionStart": [theirs]}}))
    wire_setup("claude")
    groups = json.loads((worktree / ".claude/settings.json").read_text())["hooks"]["SessionStart"]
    assert groups[0] == theirs and groups[1]["hooks"][0]["command"].startswith("wire prime")


def test_in_a_linked_worktree_trust_goes_to_the_main_checkout_which_covers_every_worktree(
        worktree, monkeypatch):
    import os

    # Codex 0.171 reads a linked worktree's .codex/ when the main checkout is trusted (checked by hand)
    git(worktree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    linked = worktree.parent / f"{worktree.name}-wt"
    git(worktree, "worktree", "add", "-q", str(linked))
    monkeypatch.chdir(linked)
    assert wire_setup("codex", "--trust")["trusted"]
    projects = tomllib.loads((Path(os.environ["CODEX_HOME"]) / "config.toml").read_text())["projects"]
    assert list(projects) == [str(worktree.resolve())]
    monkeypatch.chdir(worktree)
    assert wire_setup("codex")["trusted"]


def test_a_broken_codex_user_config_stops_setup_before_it_writes_anything(worktree):
    import os

    home = Path(os.environ["CODEX_HOME"])
    home.mkdir()
    (home / "config.toml").write_text("model = \n")
    result = CliRunner().invoke(cli, ["setup", "codex", "--trust"],
                                obj=Client("http://127.0.0.1:1", token="t"))
    assert result.exit_code == 1 and "is not valid TOML" in result.output
    assert not (worktree / ".codex").exists() and (home / "config.toml").read_text() == "model = \n"
