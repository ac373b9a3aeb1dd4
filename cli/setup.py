"""`wire setup claude|codex|cursor [--dry-run]`: write beadwire's instructions, hooks and MCP server
into a coding agent's config files in this worktree.

Idempotent: JSON files are merged (our entries replaced, everything else kept), markdown gets one
section between markers (replaced in place), TOML one table (replaced in place), files wholly ours
are rewritten. Running it twice changes nothing the second time. `--dry-run` shows what would be
written and writes nothing.

What goes where (each checked against the real Claude Code 2.1 and Codex 0.171:
scripts/check_real_tools.sh):
- Claude Code: `.claude/settings.json` hooks (SessionStart runs `wire prime`, whose output Claude
  reads as context; PostToolUse shows the banner; `--watch` adds the Stop hook that waits for work),
  `.mcp.json` (the `wire` MCP server), a section of `CLAUDE.md`, and `.claude/settings.local.json`
  `enabledMcpjsonServers: ["wire"]`: Claude leaves a project's `.mcp.json` server "pending approval"
  and ignores an approval in the shared settings, so the approval goes in the personal file, which
  is kept out of git like `.wire/`.
- Codex: `.codex/config.toml` (`[mcp_servers.wire]`), `.codex/hooks.json` (SessionStart runs
  `wire prime`) and a section of `AGENTS.md`. Codex ignores a project's `.codex/` until the user
  trusts the project in `$CODEX_HOME/config.toml`: we check, say so, and `--trust` appends the entry.
- Cursor: `.cursor/mcp.json` and `.cursor/rules/beadwire.mdc` (an always-applied rule; Cursor has
  no start hook, so the rule asks the agent to run `wire prime`).

The tools start `wire` by name; when it is not on PATH the MCP and hook commands get the absolute
path of the `wire` running now (or a warning when that is unknown), else they "fail to connect".
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cli import local, output
from cli.client import Client, WireError, pass_client

TOOLS = ("claude", "codex", "cursor")
MCP_NAME = "wire"
BEGIN = "<!-- beadwire:begin (managed by `wire setup`; edits inside are replaced) -->"
END = "<!-- beadwire:end -->"
#: Claude Code's personal settings (not shared): where a project MCP server is approved.
CLAUDE_LOCAL = ".claude/settings.local.json"
#: Codex's trust level that makes it read a project's `.codex/` files.
TRUSTED = "trusted"

INSTRUCTIONS = """\
## beadwire: working with the other agents

You are one of several coding agents on this project, coordinated through beadwire (the `wire`
command; the same tools are on the `wire` MCP server).

- Every run starts with `wire prime`: read its handoff, resume the claims it lists before anything
  else, then pick ready work.
- Before working on a bead: `wire claim ID` (exit 3: someone holds it; take another from
  `wire ready`). When done: `wire close ID --reason "what changed, how it was tested"`.
- Before editing shared files (schemas, config, lockfiles): `wire lock PATH`.
- Lines on stderr such as `WAITING: ...`, `mail from ...`, `notice: ...` are the banner: act on
  them (`wire mail open`, `wire chat reply ALIAS MESSAGE`).
- Ask a teammate: `wire mail send ALIAS "..."`; blocked on an answer: `wire chat ask ALIAS "..."`;
  a decision for a human: `wire escalate SUBJECT SITUATION --option A --option B`.
- Your rules: `wire policy`. Nothing to do: `wire watch --ready --timeout 600` (wakes for mail, chat
  and new ready work for your role; `wire wait-ready ID` waits for one bead).
- Before you stop: `wire handoff "what is done, what is next, what to watch out for"`: your next
  run starts with no memory of this one.
"""

#: Hook commands; `{w}` is how the tool starts `wire` (`wire`, or its absolute path).
PRIME_HOOK = "{w} prime 2>&1; exit 0"
BANNER_HOOK = 'b=$({w} whoami --json 2>&1 >/dev/null); [ -z "$b" ] || {{ echo "$b" >&2; exit 2; }}'
#: Stop hook of an unattended agent: wait for new ready work (exit 2 hands its line back to Claude).
WATCH_HOOK = "{w} watch --ready --timeout 540 >&2 && exit 2 || exit 0"
CURSOR_RULE = f"""\
---
description: Coordinate with the other agents through beadwire (wire)
alwaysApply: true
---
{INSTRUCTIONS}"""
#: The closing line per tool: what happens when the agent starts (only what is true of that tool).
STARTS = {
    "claude": "start Claude Code there: its SessionStart hook runs `wire prime`",
    "codex": "start Codex there: its SessionStart hook (.codex/hooks.json) runs `wire prime`, and AGENTS.md "
             "asks for it too",
    "cursor": "start Cursor there: Cursor has no start hook, so its always-applied rule asks the agent to "
              "run "
              "`wire prime` first",
}


@dataclass
class Change:
    """One file `wire setup` writes: its path (relative to the worktree), new content and what changes."""

    path: str
    content: str
    action: str  # create | update | unchanged

    def to_dict(self, with_content: bool) -> dict[str, Any]:
        out = {"path": self.path, "action": self.action}
        return {**out, "content": self.content} if with_content else out


@click.command()
@click.argument("tool", type=click.Choice(TOOLS))
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--watch", is_flag=True,
              help="Claude Code: also a Stop hook that waits for work (unattended agents).")
@click.option("--trust", is_flag=True,
              help="Codex: trust this project in $CODEX_HOME/config.toml (Codex ignores .codex/ until then).")
@output.json_option
@pass_client
def setup(client: Client, tool: str, dry_run: bool, watch: bool, trust: bool) -> None:
    """Write beadwire's instructions, hooks and MCP server into TOOL's config files in this worktree."""
    root = client.root
    command, notes = wire_command()
    changes = plan(tool, root, watch=watch, wire=command)
    result: dict[str, Any] = {"tool": tool, "root": str(root), "dry_run": dry_run, "command": command}
    if tool == "codex":
        _codex_projects(codex_home() / "config.toml")  # a broken user config stops us before any write
    if not dry_run:
        apply(root, changes)
    notes += _after(tool, root, dry_run, trust, result)
    output.emit({**result, "files": [c.to_dict(dry_run) for c in changes], "notes": notes}, _print_setup)


def wire_command() -> tuple[str, list[str]]:
    """How the tools should start `wire`: by name when it is on PATH, else the absolute path of the
    `wire` running now; with a warning when neither works."""
    if shutil.which("wire"):
        return "wire", []
    found = _running_wire()
    if found:
        return found, [f"`wire` is not on PATH: the MCP server and hooks start it as {found}"]
    return "wire", ["WARNING: `wire` is not on PATH and where it is installed is unknown: the tools will "
                    "fail "
                    "to start it (\"Failed to connect\"); put it on PATH and run `wire setup` again"]


def _running_wire() -> str | None:
    """The absolute path of the `wire` console script running this command, if there is one."""
    candidates = [Path(sys.argv[0])] if Path(sys.argv[0]).name.startswith("wire") else []
    candidates.append(Path(sys.executable).parent / "wire")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.resolve())
    return None


def plan(tool: str, root: Path, watch: bool = False, wire: str = "wire") -> list[Change]:
    """The files `tool` needs, with their merged content (nothing is written)."""
    server = {"command": wire, "args": ["mcp"]}
    mcp = lambda old: _json_merge(old, lambda d: _mcp_servers(d, server))  # noqa: E731
    if tool == "claude":
        hooks = claude_hooks(wire, watch)
        files = [(".claude/settings.json", lambda old: _json_merge(old, lambda d: _merge_hooks(d, hooks))),
                 (".mcp.json", mcp), (CLAUDE_LOCAL, lambda old: _json_merge(old, _enable_server)),
                 ("CLAUDE.md", _markdown_section)]
    elif tool == "codex":
        hooks = {"SessionStart": _group(PRIME_HOOK, wire, 30)}
        files = [(".codex/config.toml", lambda old: _codex_config(old, server)),
                 (".codex/hooks.json", lambda old: _json_merge(old, lambda d: _merge_hooks(d, hooks))),
                 ("AGENTS.md", _markdown_section)]
    else:
        files = [(".cursor/mcp.json", mcp), (".cursor/rules/beadwire.mdc", lambda old: CURSOR_RULE)]
    return [_change(root, path, merge) for path, merge in files]


def claude_hooks(wire: str, watch: bool) -> dict[str, dict[str, Any]]:
    """Our Claude Code hook group per event (`wire` is how to start it)."""
    hooks = {"SessionStart": _group(PRIME_HOOK, wire, 30),
             "PostToolUse": {"matcher": "Bash|Edit|Write", **_group(BANNER_HOOK, wire, 30)}}
    return {**hooks, "Stop": _group(WATCH_HOOK, wire, 600)} if watch else hooks


def _group(template: str, wire: str, timeout: int) -> dict[str, Any]:
    return {"hooks": [{"type": "command", "timeout": timeout,
                       "command": template.format(w=shlex.quote(wire))}]}


def _change(root: Path, path: str, merge: Any) -> Change:
    target = root / path
    old = target.read_text(encoding="utf-8") if target.is_file() else None
    new = merge(old)
    return Change(path, new, "create" if old is None else ("unchanged" if new == old else "update"))


def apply(root: Path, changes: list[Change]) -> None:
    """Write the changed files (atomically each, keeping an existing file's mode)."""
    for change in changes:
        if change.action == "unchanged":
            continue
        target = root / change.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(change.content)
            os.chmod(tmp, (target.stat().st_mode & 0o777) if target.exists() else 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# -- after the files: what the tool still needs ------------------------------------------------

def _after(tool: str, root: Path, dry_run: bool, trust: bool, result: dict[str, Any]) -> list[str]:
    """Claude: keep the personal settings out of git. Codex: the project's trust. Returns notes."""
    if tool == "claude":
        return _claude_after(root, dry_run)
    if tool == "codex":
        return _codex_trust(root, dry_run, trust, result)
    return []


def _claude_after(root: Path, dry_run: bool) -> list[str]:
    why = (f"enabled the wire MCP server in {CLAUDE_LOCAL} (enabledMcpjsonServers): Claude Code leaves a "
           "project's .mcp.json server pending approval otherwise, and ignores an approval in the shared "
           ".claude/settings.json")
    common = local.common_git_dir(root)
    if common is None:
        return [why, f"not a git checkout: keep {CLAUDE_LOCAL} out of version control yourself"]
    if not dry_run:
        local.ensure_excluded(common, CLAUDE_LOCAL)
    return [why + f"; it is personal, so it is kept out of git ({common / 'info' / 'exclude'})"]


def codex_home() -> Path:
    """Codex's own config directory: `$CODEX_HOME`, default `~/.codex`."""
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")


def trust_roots(root: Path) -> list[Path]:
    """The paths Codex may key this project's trust by: the worktree, and for a linked worktree the
    main checkout (Codex trusts a repository by its main root)."""
    roots = [root.resolve()]
    common = local.common_git_dir(root)
    if common is not None and common.name == ".git" and common.parent.resolve() not in roots:
        roots.append(common.parent.resolve())
    return roots


def _codex_trust(root: Path, dry_run: bool, trust: bool, result: dict[str, Any]) -> list[str]:
    config = codex_home() / "config.toml"
    text, projects = _codex_projects(config)
    roots = trust_roots(root)
    trusted = any((projects.get(str(r)) or {}).get("trust_level") == TRUSTED for r in roots)
    target = roots[-1]  # the main checkout: trusting it covers every worktree
    if not trusted and trust and not dry_run:
        _append_trust(config, text, projects, target)
        trusted = True
        result["trusted"] = True
        return [f"trusted {target} in {config} (Codex now reads .codex/config.toml and .codex/hooks.json "
                "there)"]
    result["trusted"] = trusted
    if trusted:
        return [f"Codex trusts this project ({config}): it reads .codex/config.toml and .codex/hooks.json"]
    return [f"NOT TRUSTED: Codex ignores this project's .codex/config.toml and .codex/hooks.json until the "
            "project is trusted (`codex mcp list` shows no wire server). Trust it: run `wire setup codex "
            "--trust` "
            f"(adds [projects.{json.dumps(str(target))}] trust_level = \"trusted\" to {config}), or answer "
            "yes "
            f"when Codex asks whether to trust this folder"]


def _codex_projects(config: Path) -> tuple[str, dict[str, Any]]:
    """The user's Codex config text and its `[projects]` tables.  Raises: WireError: not valid TOML."""
    text = config.read_text(encoding="utf-8") if config.is_file() else ""
    projects = _parse_toml(text, str(config)).get("projects")
    return text, projects if isinstance(projects, dict) else {}


def _append_trust(config: Path, text: str, projects: dict[str, Any], target: Path) -> None:
    """Append a `[projects."<target>"]` table to the user's Codex config, leaving the rest as it is.

    Raises:
        WireError: the project already has a table there (with another trust level): edit it by hand.
    """
    if str(target) in projects:
        raise WireError(f"{config} has a [projects.{json.dumps(str(target))}] table whose trust_level is not "
                        f"\"trusted\": set it by hand", code="bad_file")
    table = f"[projects.{json.dumps(str(target))}]\ntrust_level = \"{TRUSTED}\"\n"
    merged = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text.strip() else "") \
            + table
    entry = (_parse_toml(merged, str(config)).get("projects") or {}).get(str(target), {})
    if entry.get("trust_level") != TRUSTED:
        raise WireError(f"could not add the trust entry to {config}: edit it by hand", code="bad_file")
    config.parent.mkdir(parents=True, exist_ok=True)
    with config.open("a", encoding="utf-8") as fh:  # append, never rewrite the user's file
        fh.write(merged[len(text):])


# -- merging -----------------------------------------------------------------------------------

def _json_merge(old: str | None, update: Any) -> str:
    """`update(data)` applied to the parsed file (an object), dumped with 2-space indent.

    Raises:
        WireError: the file exists but is not a JSON object (we never overwrite what we cannot parse).
    """
    data: Any = {}
    if old is not None and old.strip():
        try:
            data = json.loads(old)
        except ValueError as exc:
            raise WireError(f"cannot merge into a file that is not JSON ({exc}): fix or move it",
                            code="bad_file") \
                from exc
    if not isinstance(data, dict):
        raise WireError("cannot merge into a JSON file that is not an object: fix or move it",
                        code="bad_file")
    update(data)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _mcp_servers(data: dict[str, Any], server: dict[str, Any]) -> None:
    servers = data.get("mcpServers")
    data["mcpServers"] = {**(servers if isinstance(servers, dict) else {}), MCP_NAME: server}


def _enable_server(data: dict[str, Any]) -> None:
    """Claude Code's approval of the project's `wire` server (others' approvals kept)."""
    enabled = data.get("enabledMcpjsonServers")
    enabled = [s for s in enabled if s != MCP_NAME] if isinstance(enabled, list) else []
    data["enabledMcpjsonServers"] = [*enabled, MCP_NAME]


def _merge_hooks(data: dict[str, Any], hooks: dict[str, dict[str, Any]]) -> None:
    """Our hook group for each event, replacing an earlier one of ours, keeping everyone else's
    (Claude's settings.json and Codex's hooks.json share this shape)."""
    current: dict[str, Any] = data["hooks"] if isinstance(data.get("hooks"), dict) else {}
    for event, group in hooks.items():
        groups: list[Any] = current[event] if isinstance(current.get(event), list) else []
        current[event] = [g for g in groups if not _ours(g)] + [group]
    data["hooks"] = current


#: A hook command that starts with `wire` or `$(wire` (by name, or by a path ending in /wire, maybe quoted).
OURS = re.compile(r"(?:^|\$\()(?:'[^']*/|[^\s'()]*/)?wire'? ")


def _ours(group: Any) -> bool:
    """Whether a hook group runs `wire` (one `wire setup` wrote, maybe an older version of it)."""
    hooks = group.get("hooks") if isinstance(group, dict) else None
    listed = hooks if isinstance(hooks, list) else []
    commands = [str(h.get("command", "")) for h in listed if isinstance(h, dict)]
    return any(OURS.search(c) for c in commands)


def _markdown_section(old: str | None) -> str:
    """`old` with our section between the markers (replaced in place, else appended)."""
    section = f"{BEGIN}\n{INSTRUCTIONS}{END}\n"
    text = old or ""
    start, end = text.find(BEGIN), text.find(END)
    if start != -1 and end > start:
        after = text[end + len(END):]
        return text[:start] + section + after.removeprefix("\n")
    if not text:
        return section
    return text + ("" if text.endswith("\n") else "\n") + "\n" + section


def _codex_config(old: str | None, server: dict[str, Any]) -> str:
    """`old` with the `[mcp_servers.wire]` table (replaced in place, else appended).

    Raises:
        WireError: the file is not valid TOML, before or after the merge.
    """
    table = (f'[mcp_servers.{MCP_NAME}]\ncommand = {json.dumps(server["command"])}\n'
             f'args = {json.dumps(server["args"])}\n')
    text = old or ""
    _parse_toml(text)
    lines = text.splitlines(keepends=True)
    header = f"[mcp_servers.{MCP_NAME}]"
    at = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if at is None:
        merged = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text.strip() else "") \
            + table
    else:
        stop = next((j for j in range(at + 1, len(lines)) if lines[j].lstrip().startswith("[")), len(lines))
        rest = "".join(lines[stop:])
        merged = "".join(lines[:at]) + table + ("\n" + rest if rest else "")
    parsed = _parse_toml(merged)
    if parsed.get("mcp_servers", {}).get(MCP_NAME) != server:
        raise WireError(f"could not merge [mcp_servers.{MCP_NAME}] into .codex/config.toml: edit it by hand",
                        code="bad_file")
    return merged


def _parse_toml(text: str, name: str = ".codex/config.toml") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WireError(f"{name} is not valid TOML ({exc}): fix or move it", code="bad_file") from exc



def _print_setup(result: dict[str, Any]) -> None:
    verb = "would write" if result["dry_run"] else "wrote"
    for f in result["files"]:
        if f["action"] == "unchanged":
            click.echo(f"unchanged {f['path']}")
            continue
        click.echo(f"{verb} {f['path']} ({f['action']})")
        if result["dry_run"]:
            click.echo("".join(f"  | {line}\n" for line in f["content"].splitlines()), nl=False)
    for note in result.get("notes") or []:
        click.echo(note)
    if not result["dry_run"]:
        click.echo(f"{result['tool']} is set up in {result['root']}: {STARTS[result['tool']]}")
