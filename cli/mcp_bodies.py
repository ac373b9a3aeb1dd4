"""The bodies of the MCP tools that are more than one call (named by `run` in the operations table).

Each takes the tool's client and arguments and returns the API's answer, or a `Reply` when the
printer depends on the arguments; the tool renders it with the `wire` command's printer. Imported
only by `wire mcp` (cli/mcp_server.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli import beads, chat, escalations, locks
from cli import policy as policies
from cli import watch as watching
from cli.client import Client


@dataclass
class Reply:
    """A tool's answer with the renderer to use when the tool picks one (it depends on the arguments)."""

    answer: Any
    render: Callable[[Any], None]


def ready(c: Client, limit: int, explain: str | None, role: str | None) -> Reply:
    """Ready beads, my role's first; or, with `explain`, why that bead is or is not ready."""
    if explain:
        return Reply(c.explain(explain), beads._print_explain)
    mine = beads._my_role(c)
    return Reply(c.ready(limit, role), lambda b: beads._print_ready(b, mine=mine, role=role))


def wait_ready(c: Client, id: str | None, timeout: int) -> Any:
    """`wire wait-ready`'s wait, bounded by the tool's timeout."""
    return watching.wait_for_ready(c, id, timeout)


def watch(c: Client, timeout: int, ready: bool) -> Any:
    """`wire watch`'s wait, with the line that says why it woke."""
    answer = watching.wait_for(c, timeout, ready)
    return {**answer, "woke": watching.woke_line(answer).removeprefix("woke: ")}


def chat_talk(c: Client, to: str, message: str, wait_seconds: int) -> Reply:
    """Say `message` to `to`, then wait up to `wait_seconds` for the answer (`wire chat ask`)."""
    return Reply(*chat.talk(c, to, message, wait_seconds))


def lock(c: Client, paths: list[str], ttl: int | None, reason: str | None, bead: str | None) -> Any:
    """Reserve `paths`, relative to the worktree as `wire lock` takes them."""
    return c.lock(locks.repo_patterns(c, tuple(paths)), ttl=ttl, bead=bead, reason=reason)


def unlock(c: Client, paths: list[str] | None) -> Any:
    """Release `paths`, or every reservation of ours without them."""
    return c.unlock(locks.repo_patterns(c, tuple(paths)) if paths else None)


def escalate(c: Client, subject: str, situation: str, options: list[str] | None, severity: str) -> Any:
    """Ask a human, with this worktree's local context attached (as `wire escalate` does)."""
    return c.escalate({"subject": subject, "situation": situation, "options": options or [],
                       "severity": severity, "context": escalations.local_context(c.root)})


def policy(c: Client, role: str | None) -> Any:
    """The policy view, through `wire policy`'s cache."""
    return policies.fetch(c, role, None)
