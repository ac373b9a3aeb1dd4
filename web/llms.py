"""`GET /llms.txt`: how an agent onboards itself, in plain text, with this server's URL filled in.

No token: it is what an agent reads before it has one. Every `wire` line in it is built from the
CLI's own click command table (`cli.COMMANDS`): a command or option that does not exist fails the
build of the text (and its test), so the guide cannot drift from the real commands. The web
importing the CLI's command definitions is deliberate and read-only: it renders their names and help.
"""

from __future__ import annotations

import functools
from typing import cast

import click
from flask import Blueprint, Response, request

from web.common import limit_ip

bp = Blueprint("llms", __name__)

#: What the agent fills in before running a line (the answers to the questions it asks its human).
PLACEHOLDERS = {
    "<project>": "the project to join",
    "<name>": "your alias, the name the other agents see",
    "<role>": "your role: developer, reviewer, frontend, backend, ... (coordinator is a human's call)",
    "<human>": "your human's name",
    "<join-key>": "the single-use join key (bw_jk_...) your human gives",
    "<tool>": "claude, codex or cursor: the coding tool you run in",
    "<id>": "a bead id such as bd-12",
}

#: The steps, in order: (title, intro, lines). A line is (command path, arguments); "--x" must be an
#: option of that command. Placeholders stay in angle brackets.
JOIN = [
    (("init",), ["--project", "<project>", "--alias", "<name>", "--role", "<role>", "--human", "<human>",
                 "--join-key", "<join-key>"]),
    (("prime",), []),
    (("setup",), ["<tool>"]),
]
LOOP = [
    (("ready",), []),
    (("claim",), ["<id>"]),
    (("close",), ["<id>", "--reason", '"what changed, how it was tested"']),
    (("handoff",), ['"what is done, what is next, what to watch out for"']),
]
TALK = [
    (("mail", "send"), ["<alias>", '"..."']),
    (("mail", "open"), []),
    (("chat", "ask"), ["<alias>", '"..."']),
    (("chat", "reply"), ["<alias>", '"..."']),
    (("escalate",), ['"subject"', '"the situation"', "--option", '"A"', "--option", '"B"']),
    (("watch",), ["--ready", "--timeout", "600"]),
]
MORE = [
    (("add-worktree",), ["<role>", "--alias", "<name>"]),
]
#: Commands the reference at the end leaves out: the server and the MCP server are not for agents.
NOT_FOR_AGENTS = ("serve", "mcp", "dashboard")


@bp.get("/llms.txt")
def llms_txt() -> Response:
    limit_ip()  # no token: the caller's address pays
    url = request.url_root.rstrip("/")
    return Response(render(url), mimetype="text/plain", headers={"Cache-Control": "no-cache"})


@functools.lru_cache(maxsize=16)
def render(url: str) -> str:
    """The whole guide for the server at `url`."""
    # late: the CLI's whole command tree is loaded only when the guide is asked for, not in every worker
    from cli import cli as root  # noqa: PLC0415

    ctx = click.Context(root, info_name="wire")
    out = [f"# beadwire at {url}: join a team of coding agents", "",
           "You are a coding agent. This server coordinates the agents of one project: who works on what",
           "(claims on beads, the project's issues), mail and chat between agents, and questions to humans.",
           "You use it through the `wire` command (and the `wire` MCP server that `wire setup` registers).",
           "Lines in code blocks are commands: replace each <placeholder> first.", "",
           "## 1. Install wire", "", "```", "python3 -m pip install beadwire", "wire --version", "```", "",
           "## 2. Ask your human (one message, all at once)", "",
           "- Project: which project to join (<project>)? The join key (<join-key>): from the dashboard's",
           f"  \"Add an agent\" page ({url}/agents/add) or `wire key join`"
           " (each key registers one agent, 24 h).",
           "- Role (<role>): developer, reviewer, frontend, backend, ...?",
           "- Name (<name>): the alias the other agents will know you by? And the human's name (<human>)?",
           "- More agents: should you add git worktrees for more agents beside you (`wire add-worktree`)?",
           "",
           "## 3. Join (inside the git checkout of the project; it needs an `origin` remote)", "",
           "```", f"export WIRE_URL={url}", *_lines(ctx, JOIN), "```", "", *_helps(ctx, JOIN), "",
           "## 4. The daily loop: ready, claim, work, close", "", "```", *_lines(ctx, LOOP), "```", "",
           *_helps(ctx, LOOP),
           "- Resume the claims `wire prime` lists before anything else; exit 3 on claim: someone holds it,",
           "  take another bead from `wire ready`. Commit your work; name the bead id in the message.", "",
           "## 5. Mail, chat, escalate", "", "```", *_lines(ctx, TALK), "```", "", *_helps(ctx, TALK),
           "- Mail first, chat only when blocked. Lines on stderr such as `WAITING: ...` or `mail from ...`",
           "  are the banner: act on them.", "",
           "## 6. More agents (only when your human said so)", "", "```", *_lines(ctx, MORE), "```", "",
           *_helps(ctx, MORE),
           "- Then open the new worktree in another session of your tool: it runs `wire setup <tool>` there.",
           "",
           "## Placeholders", "", *(f"- {k}: {v}" for k, v in PLACEHOLDERS.items()), "",
           "## Every command", "", *_reference(ctx), "",
           "Every command takes --json. Exit codes: 0 ok, 1 error, 2 usage, 3 conflict, 4 not found,",
           "5 server unreachable, 6 wait timed out.", ""]
    return "\n".join(out)


def command(ctx: click.Context, path: tuple[str, ...]) -> click.Command:
    """The click command at `path` (e.g. ("mail", "send")).  Raises: LookupError: there is none."""
    found = ctx.command
    for name in path:
        sub = found.get_command(ctx, name) if isinstance(found, click.Group) else None
        if sub is None:
            raise LookupError(f"llms.txt names `wire {' '.join(path)}`, which does not exist")
        found = sub
    return found


def _line(ctx: click.Context, path: tuple[str, ...], args: list[str]) -> str:
    cmd = command(ctx, path)
    flags = {flag for p in cmd.params if isinstance(p, click.Option) for flag in p.opts}
    missing = [a for a in args if a.startswith("--") and a not in flags]
    if missing:
        raise LookupError(f"`wire {' '.join(path)}` has no option {', '.join(missing)}")
    return " ".join(["wire", *path, *args])


def _lines(ctx: click.Context, steps: list) -> list[str]:
    return [_line(ctx, path, args) for path, args in steps]


def _helps(ctx: click.Context, steps: list) -> list[str]:
    return [f"- wire {' '.join(path)}: {command(ctx, path).get_short_help_str(100)}" for path, _ in steps]


def _reference(ctx: click.Context) -> list[str]:
    """`- wire NAME: one-line help` for each command (a group's subcommands indented under it)."""
    lines = []
    root = cast(click.Group, ctx.command)  # `wire` itself: render() builds the context on the root group
    for name in root.list_commands(ctx):
        if name in NOT_FOR_AGENTS:
            continue
        cmd = command(ctx, (name,))
        lines.append(f"- wire {name}: {cmd.get_short_help_str(100)}")
        if isinstance(cmd, click.Group):
            lines += [f"  - wire {name} {sub}: {command(ctx, (name, sub)).get_short_help_str(90)}"
                      for sub in cmd.list_commands(ctx)]
    return lines
