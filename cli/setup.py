"""`wire setup claude|codex|cursor [--dry-run]`: write beadwire's instructions, hooks and MCP server
into a coding agent's config files in this worktree.

Idempotent: JSON files are merged (our entries replaced, everything else kept), markdown gets one
section between markers (replaced in place), TOML one table (replaced in place), files wholly ours
are rewritten. Running it twice changes nothing the second time. `--dry-run` shows what would be
written and writes nothing.

What goes where:
- Claude Code: `.claude/settings.json` hooks (SessionStart runs `wire prime`, whose output Claude
  reads as context; PostToolUse shows the banner; `--watch` adds the Stop hook that waits for work),
  `.mcp.json` (the `wire` MCP server) and a section of `CLAUDE.md`.
- Codex: `.codex/config.toml` (`[mcp_servers.wire]`) and a section of `AGENTS.md`, which tells it
  to run `wire prime` first (Codex has no verified start hook).
- Cursor: `.cursor/mcp.json` and `.cursor/rules/beadwire.mdc` (an always-applied rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cli import output
from cli.client import Client, WireError, pass_client

TOOLS = ("claude", "codex", "cursor")
#: How agents start the MCP server (`wire` must be on their PATH).
MCP_SERVER = {"command": "wire", "args": ["mcp"]}
MCP_NAME = "wire"
BEGIN = "<!-- beadwire:begin (managed by `wire setup`; edits inside are replaced) -->"
END = "<!-- beadwire:end -->"

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

PRIME_HOOK = "wire prime 2>&1; exit 0"
BANNER_HOOK = 'b=$(wire whoami --json 2>&1 >/dev/null); [ -z "$b" ] || { echo "$b" >&2; exit 2; }'
#: `--ready`: an idle agent is also woken when new work for its role becomes ready (issue 18).
WATCH_HOOK = "wire watch --ready --timeout 540 >&2 && exit 2 || exit 0"
#: Our hook groups by event; a group is ours when one of its commands starts with `wire `.
CLAUDE_HOOKS: dict[str, dict[str, Any]] = {
    "SessionStart": {"hooks": [{"type": "command", "timeout": 30, "command": PRIME_HOOK}]},
    "PostToolUse": {"matcher": "Bash|Edit|Write", "hooks": [{"type": "command", "timeout": 30,
                                                             "command": BANNER_HOOK}]},
}
CLAUDE_WATCH = {"Stop": {"hooks": [{"type": "command", "timeout": 600, "command": WATCH_HOOK}]}}
CURSOR_RULE = f"""\
---
description: Coordinate with the other agents through beadwire (wire)
alwaysApply: true
---
{INSTRUCTIONS}"""


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
@click.option("--watch", is_flag=True, help="Claude Code: also a Stop hook that waits for work (unattended agents).")
@output.json_option
@pass_client
def setup(client: Client, tool: str, dry_run: bool, watch: bool) -> None:
    """Write beadwire's instructions, hooks and MCP server into TOOL's config files in this worktree."""
    root = client.root
    changes = plan(tool, root, watch=watch)
    if not dry_run:
        apply(root, changes)
    output.emit({"tool": tool, "root": str(root), "dry_run": dry_run,
                 "files": [c.to_dict(dry_run) for c in changes]}, _print_setup)


def plan(tool: str, root: Path, watch: bool = False) -> list[Change]:
    """The files `tool` needs, with their merged content (nothing is written)."""
    if tool == "claude":
        hooks = {**CLAUDE_HOOKS, **(CLAUDE_WATCH if watch else {})}
        files = [(".claude/settings.json", lambda old: _json_merge(old, lambda d: _claude_settings(d, hooks))),
                 (".mcp.json", lambda old: _json_merge(old, _mcp_servers)),
                 ("CLAUDE.md", _markdown_section)]
    elif tool == "codex":
        files = [(".codex/config.toml", _codex_config), ("AGENTS.md", _markdown_section)]
    else:
        files = [(".cursor/mcp.json", lambda old: _json_merge(old, _mcp_servers)),
                 (".cursor/rules/beadwire.mdc", lambda old: CURSOR_RULE)]
    return [_change(root, path, merge) for path, merge in files]


def _change(root: Path, path: str, merge: Any) -> Change:
    target = root / path
    old = target.read_text(encoding="utf-8") if target.is_file() else None
    new = merge(old)
    return Change(path, new, "create" if old is None else ("unchanged" if new == old else "update"))


def apply(root: Path, changes: list[Change]) -> None:
    """Write the changed files (atomically each, keeping an existing file's mode)."""
    import os
    import tempfile

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
            raise WireError(f"cannot merge into a file that is not JSON ({exc}): fix or move it", code="bad_file") \
                from exc
    if not isinstance(data, dict):
        raise WireError("cannot merge into a JSON file that is not an object: fix or move it", code="bad_file")
    update(data)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _mcp_servers(data: dict[str, Any]) -> None:
    servers = data.get("mcpServers")
    data["mcpServers"] = {**(servers if isinstance(servers, dict) else {}), MCP_NAME: MCP_SERVER}


def _claude_settings(data: dict[str, Any], hooks: dict[str, dict[str, Any]]) -> None:
    """Our hook group for each event, replacing an earlier one of ours, keeping everyone else's."""
    current = data.get("hooks") if isinstance(data.get("hooks"), dict) else {}
    for event, group in hooks.items():
        groups = current.get(event) if isinstance(current.get(event), list) else []
        current[event] = [g for g in groups if not _ours(g)] + [group]
    data["hooks"] = current


def _ours(group: Any) -> bool:
    """Whether a hook group runs `wire` (one `wire setup` wrote, maybe an older version of it)."""
    hooks = group.get("hooks") if isinstance(group, dict) else None
    commands = [str(h.get("command", "")) for h in hooks if isinstance(h, dict)] if isinstance(hooks, list) else []
    return any(c.startswith("wire ") or "$(wire " in c for c in commands)


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


def _codex_config(old: str | None) -> str:
    """`old` with the `[mcp_servers.wire]` table (replaced in place, else appended).

    Raises:
        WireError: the file is not valid TOML, before or after the merge.
    """
    table = f'[mcp_servers.{MCP_NAME}]\ncommand = "{MCP_SERVER["command"]}"\nargs = {json.dumps(MCP_SERVER["args"])}\n'
    text = old or ""
    _parse_toml(text)
    lines = text.splitlines(keepends=True)
    header = f"[mcp_servers.{MCP_NAME}]"
    at = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if at is None:
        merged = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text.strip() else "") + table
    else:
        stop = next((j for j in range(at + 1, len(lines)) if lines[j].lstrip().startswith("[")), len(lines))
        rest = "".join(lines[stop:])
        merged = "".join(lines[:at]) + table + ("\n" + rest if rest else "")
    parsed = _parse_toml(merged)
    if parsed.get("mcp_servers", {}).get(MCP_NAME) != MCP_SERVER:
        raise WireError(f"could not merge [mcp_servers.{MCP_NAME}] into .codex/config.toml: edit it by hand",
                        code="bad_file")
    return merged


def _parse_toml(text: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WireError(f".codex/config.toml is not valid TOML ({exc}): fix or move it", code="bad_file") from exc


def _print_setup(result: dict[str, Any]) -> None:
    verb = "would write" if result["dry_run"] else "wrote"
    for f in result["files"]:
        if f["action"] == "unchanged":
            click.echo(f"unchanged {f['path']}")
            continue
        click.echo(f"{verb} {f['path']} ({f['action']})")
        if result["dry_run"]:
            click.echo("".join(f"  | {line}\n" for line in f["content"].splitlines()), nl=False)
    if not result["dry_run"]:
        click.echo(f"{result['tool']} is set up in {result['root']}: start it there; it runs `wire prime` first")
