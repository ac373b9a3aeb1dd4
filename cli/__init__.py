"""The `wire` command line: the root group, its lazily imported commands, and `main()`.

The root group builds a `Client` into `ctx.obj` (tests pass their own with `obj=`); commands get it
through `pass_client`. A command's module is imported only when that command runs, so a one-shot
`wire ...` stays fast: agents run it hundreds of times an hour.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cli import output
from cli.errors import UsageFailure, WireError
from cli.transport import DEFAULT_TIMEOUT, DEFAULT_URL

if TYPE_CHECKING:
    from cli.client import Client

#: Command name -> "module:attribute", imported on first use, listed in this order by `--help`;
#: `cli.generated:NAME` is built from its row of the operations table (cli/operations.py).
COMMANDS: dict[str, str] = {
    "init": "cli.identity:init",
    "whoami": "cli.generated:whoami",
    "status": "cli.generated:status",
    "ready": "cli.beads:ready",
    "mine": "cli.generated:mine",
    "claim": "cli.generated:claim",
    "release": "cli.generated:release",
    "create": "cli.beads:create",
    "show": "cli.generated:show",
    "list": "cli.generated:list",
    "search": "cli.generated:search",
    "update": "cli.beads:update",
    "comment": "cli.beads:comment",
    "close": "cli.generated:close",
    "reopen": "cli.generated:reopen",
    "link": "cli.beads:link",
    "deps": "cli.generated:deps",
    "history": "cli.generated:history",
    "assign": "cli.steer:assign",
    "unassign": "cli.steer:unassign",
    "subscribe": "cli.generated:subscribe",
    "unsubscribe": "cli.generated:unsubscribe",
    "mail": "cli.mail:mail",
    "chat": "cli.chat:chat",
    "watch": "cli.watch:watch",
    "wait-ready": "cli.watch:wait_ready",
    "lock": "cli.locks:lock",
    "unlock": "cli.locks:unlock",
    "locks": "cli.locks:locks",
    "guard": "cli.guard:guard",
    "escalate": "cli.escalations:escalate",
    "escalations": "cli.escalations:escalations",
    "respond": "cli.escalations:respond",
    "policy": "cli.policy:policy",
    "sync": "cli.sync:sync",
    "serve": "cli.serve:serve_command",
    "dashboard": "cli.dashboard:dashboard",
    "settings": "cli.settings:settings",
    "key": "cli.keys:key",
    "workspace": "cli.keys:workspace",
    "agent": "cli.steer:agent",
    "audit": "cli.steer:audit",
    "prime": "cli.onboarding:prime",
    "handoff": "cli.onboarding:handoff",
    "add-worktree": "cli.onboarding:add_worktree",
    "setup": "cli.setup:setup",
    "mcp": "cli.mcp_server:mcp",
    "human": "cli.humans:human",
}
#: The first paragraph of each command's help, so `wire --help` lists them without importing a single
#: command module; tests/test_cli_startup.py keeps it equal to the commands' own help.
HELP: dict[str, str] = {
    "init": "Register this worktree with the server (creating the project if it is new).",
    "whoami": "Show this workspace's identity: alias, role, project, repo, branch, claims.",
    "status": "Show who you are, then the team: presence, branches, claims.",
    "ready": "List beads ready to work on: your role's first, most urgent first; others' marked [role:R].",
    "mine": "List the beads you hold.",
    "claim": "Claim a bead so others know you work on it (exit 3 if someone else holds it).",
    "release": "Give a bead back without closing it (a person with --as frees whoever holds it).",
    "create": "Create a bead.",
    "show": "Show a bead: status, claim, dependencies, description, comments.",
    "list": "List beads (closed ones only with --all).",
    "search": "Search beads by title, description and id.",
    "update": "Change a bead's fields (status in_progress is the same as `wire claim`).",
    "comment": "Add a comment to a bead ('-' reads the text from stdin).",
    "close": "Close a bead and list the beads that became ready.",
    "reopen": "Reopen a closed bead.",
    "link": "Add a dependency: ID --blocked-by OTHER, or ID --parent OTHER.",
    "deps": "Show a bead's blockers, what it blocks, its parent and children.",
    "history": "Show who changed a bead, what and when (its last 100 changes, newest first).",
    "assign": ("Assign a bead to an agent: it heads their ready and prime, others' claims are refused "
               "(exit 3)."),
    "unassign": "Remove a bead's assignment: anyone may claim it again.",
    "subscribe": "Get a notice (in the banner and `wire mail`) whenever this bead's status changes.",
    "unsubscribe": "Stop the notices about this bead.",
    "mail": 'Mail: async, durable messages to agents (`wire mail send bob "..."`, `wire mail open`).',
    "chat": "Chat: ask an agent and wait for the answer. Mail first; chat when you are blocked.",
    "watch": ("Wait until mail, chat or a notice arrives, someone waits on you, or (--ready) work "
              "becomes ready; say why and print it (exit 6 on timeout)."),
    "wait-ready": ("Wait until bead ID (or, without ID, any bead for you in your repo) is ready; print "
                   "it (exit 6 on timeout). Answers at once when it is ready already."),
    "lock": ("Reserve files or globs (advisory: granted even when someone else holds an overlap, with a "
             "warning)."),
    "unlock": "Release your reservations of PATHs (as you reserved them), or all of them with --all.",
    "locks": "List the live reservations of this repo; with --check PATH..., who holds what overlaps PATHs.",
    "guard": "Git pre-commit hook: warn (or refuse) when staged files are reserved by another workspace.",
    "escalate": "Ask a human: SUBJECT in one line, SITUATION ('-' reads stdin) says what you tried and need.",
    "escalations": ("List escalations, newest first: all with the project key (or as coordinator), else "
                    "your own."),
    "respond": "Answer escalation ID (humans: needs the project key). RESPONSE '-' reads stdin.",
    "policy": "Show the project's invariants and your role's playbook (or --role ROLE's).",
    "sync": ("Sync the repo's beads (.beads/issues.jsonl) with the server, both ways (exit 3: refused "
             "deletions)."),
    "serve": "Run web, worker, clock (and a bundled Redis) on this machine until Ctrl-C.",
    "dashboard": "Print a one-time login link to the dashboard (read-only without the project key).",
    "settings": "Show the project's settings; with an option, change it (a coordinator, or --key).",
    "key": "Manage the project key (humans only) and make join keys (humans and coordinators).",
    "workspace": "Manage the project's workspaces (humans only).",
    "agent": "Steer an agent: pause it (no new claims) and resume it.",
    "audit": "Who changed what, when, from where (newest first; a coordinator, or --key).",
    "prime": ("What you need now: the last handoff, who you are, your playbook, claims to resume, ready "
              "work, mail, team."),
    "handoff": "Leave TEXT for your next run (or --to the agent taking over); without TEXT, show the latest.",
    "add-worktree": ("Create a git worktree beside this repo on a new branch and register it as a new "
                     "agent (ROLE) of this project; its identity is its own, its project the same."),
    "setup": "Write beadwire's instructions, hooks and MCP server into TOOL's config files in this worktree.",
    "mcp": "Run an MCP server on stdio acting as this worktree's workspace (for Claude Code, Codex, Cursor).",
    "human": "Persons of the project: add, list, remove; log in as yourself for the CLI.",
}
EPILOG = ("Exit codes: 0 ok, 1 error, 2 usage, 3 conflict (e.g. claim rejected), 4 not found, "
          "5 server unreachable (coordination calls are journaled, replayed by the next command), "
          "6 wait timed out.")


class LazyGroup(click.Group):
    """A group whose commands are imported from `COMMANDS` on first use."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Lazy commands in table order, then any added eagerly."""
        return [*self.lazy_commands, *(n for n in super().list_commands(ctx) if n not in self.lazy_commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command, importing its module the first time."""
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, name: str) -> click.Command:
        module, _, attr = self.lazy_commands[name].partition(":")
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise WireError(f"`wire {name}` is not available in this installation: {exc}",
                            code="unavailable_command") from exc
        if not isinstance(command, click.Command):
            raise WireError(f"`wire {name}` is not a command ({module}:{attr})", code="unavailable_command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands from `HELP`, so `--help` imports no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = [(name, text) for name in names if (text := self._short_help(ctx, name, limit)) is not None]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str | None:
        if name in HELP and name not in self.commands:
            # what click derives from the full help, through a command that holds only the text
            return click.Command(name, help=HELP[name]).get_short_help_str(limit)
        try:
            command = self.get_command(ctx, name)
        except WireError:
            return "(not available)"
        return None if command is None or command.hidden else command.get_short_help_str(limit)


class WireGroup(LazyGroup):
    """The root group: reports usage errors as JSON in JSON mode and settles each error's format."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse root options; a usage error here is JSON when `--json` or `WIRE_JSON` asks for it."""
        given = list(args)  # click's parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if "--json" in given:
                ctx.meta[output.JSON_KEY] = True
            _raise_json_usage(exc, ctx)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; errors learn whether to print JSON before the context goes away."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _raise_json_usage(exc, ctx)
            raise
        except WireError as exc:
            exc.json_mode = exc.json_mode or output.is_json(ctx)
            raise


def _raise_json_usage(exc: click.UsageError, ctx: click.Context) -> None:
    """In JSON mode, replace click's text usage error with a JSON one (still exit 2)."""
    if output.is_json(ctx):
        failure = UsageFailure(exc.format_message())
        failure.json_mode = True
        raise failure from exc


@click.group("wire", cls=WireGroup, lazy_commands=COMMANDS, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="WIRE_URL", metavar="URL",
              help=f"Server URL (env WIRE_URL; default: the workspace's, else {DEFAULT_URL}).")
@click.option("--json", "json_", is_flag=True, envvar="WIRE_JSON", expose_value=False,
              callback=output.set_json, help="Print JSON (env WIRE_JSON=1).")
@click.option("--timeout", envvar="WIRE_TIMEOUT", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT,
              show_default=True, metavar="SECONDS", help="Seconds to wait for the server (env WIRE_TIMEOUT).")
@click.option("--no-auto-reserve", is_flag=True, envvar="WIRE_NO_AUTO_RESERVE",
              help="Do not reserve the files git shows modified (env WIRE_NO_AUTO_RESERVE=1).")
@click.option("--as", "as_name", envvar="WIRE_AS", metavar="NAME",
              help="Act as person NAME, with the token `wire human login` saved (env WIRE_AS); "
                   "or set WIRE_HUMAN_TOKEN.")
@click.option("--human-token", envvar="WIRE_HUMAN_TOKEN", hidden=True, metavar="TOKEN")
@click.version_option(package_name="beadwire", prog_name="wire")
@click.pass_context
def cli(ctx: click.Context, url: str | None, timeout: float, no_auto_reserve: bool, as_name: str | None,
        human_token: str | None) -> None:
    """Coordinate with the other agents of your project: who is on, who holds what, what is ready."""
    if ctx.obj is None:  # tests inject their own client with `obj=`
        from cli.client import Client  # noqa: PLC0415 - start-up time: not for `--help`

        ctx.obj = Client(url, timeout=timeout, auto_reserve=not no_auto_reserve)
    if as_name or human_token:
        ctx.obj.person_token = _person_token(ctx.obj, as_name, human_token)


def _person_token(client: Client, name: str | None, token: str | None) -> str:
    """`--as NAME`: that person's saved token (keys.json); else WIRE_HUMAN_TOKEN as given.

    Raises:
        click.UsageError: no token saved for NAME on this server.
    """
    if not name:
        return token or ""
    from cli import local  # noqa: PLC0415 - the workspace files, only with --as (start-up time)

    slug = client.workspace.project if client.workspace is not None else None
    found = local.find_human_token(client.url, name, slug)
    if not found:
        raise click.UsageError(f"no token of {name} saved for {client.url}: run `wire human login LINK` with "
                               "the invite link, or set WIRE_HUMAN_TOKEN")
    return found


def main() -> None:
    """Console-script entry point (`wire = "cli:main"`): run the command, then end the process at once.

    Raises:
        SystemExit: the command's exit, when ending at once is not safe (see `_end`).
    """
    try:
        cli(prog_name="wire")
    except SystemExit as exc:
        _end(exc)
    _end(SystemExit(0))  # not reached: click's standalone mode always exits


def _end(exc: SystemExit) -> NoReturn:
    """Exit with `exc`'s code without the interpreter's teardown, which frees every module and object
    one by one: 15-20% of a one-shot command's CPU (bench/cli_startup.py). What that teardown does
    that matters is done here: the atexit handlers run and stdout/stderr are flushed. Left to the
    normal exit: a code that is not a number (click prints it), a thread still running (the teardown
    waits for it), or output that cannot be flushed (the teardown reports it, as Python does).

    Raises:
        SystemExit: `exc`, when ending at once is not safe.
    """
    code = exc.code if exc.code is not None else 0
    threading = sys.modules.get("threading")  # not imported: no thread was started
    if not isinstance(code, int) or (threading is not None and any(
            not t.daemon for t in threading.enumerate() if t is not threading.main_thread())):
        raise exc
    atexit._run_exitfuncs()  # what the teardown would run first (and then not again)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise exc from None
    os._exit(code)
