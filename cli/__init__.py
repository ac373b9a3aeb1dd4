"""The `wire` command line: the root group, its lazily imported commands, and `main()`.

The root group builds a `Client` into `ctx.obj` (tests pass their own with `obj=`); commands get it
through `pass_client`. A command's module is imported only when that command runs, so a one-shot
`wire ...` stays fast: agents run it hundreds of times an hour.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from cli import output
from cli.client import DEFAULT_TIMEOUT, DEFAULT_URL, Client, UsageFailure, WireError

#: Command name -> "module:attribute", imported on first use, listed in this order by `--help`.
COMMANDS: dict[str, str] = {
    "init": "cli.identity:init",
    "whoami": "cli.identity:whoami",
    "status": "cli.identity:status",
    "ready": "cli.beads:ready",
    "mine": "cli.beads:mine",
    "claim": "cli.beads:claim",
    "release": "cli.beads:release",
    "create": "cli.beads:create",
    "show": "cli.beads:show",
    "list": "cli.beads:list_beads",
    "search": "cli.beads:search",
    "update": "cli.beads:update",
    "comment": "cli.beads:comment",
    "close": "cli.beads:close",
    "reopen": "cli.beads:reopen",
    "link": "cli.beads:link",
    "deps": "cli.beads:deps",
    "assign": "cli.steer:assign",
    "unassign": "cli.steer:unassign",
    "subscribe": "cli.beads:subscribe",
    "unsubscribe": "cli.beads:unsubscribe",
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
#: Short help for commands whose module is heavy or may be missing; `wire --help` won't import them.
STATIC_HELP: dict[str, str] = {
    "serve": "Run beadwire on this machine (API, workers, embedded Redis).",
    "mcp": "MCP server on stdio acting as this worktree's workspace.",
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
        """List the commands, using `STATIC_HELP` so heavy modules are not imported for `--help`."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = [(name, text) for name in names if (text := self._short_help(ctx, name, limit)) is not None]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str | None:
        if name in STATIC_HELP and name not in self.commands:
            return STATIC_HELP[name]
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
    from cli import local

    slug = client.workspace.project if client.workspace is not None else None
    found = local.find_human_token(client.url, name, slug)
    if not found:
        raise click.UsageError(f"no token of {name} saved for {client.url}: run `wire human login LINK` with "
                               "the invite link, or set WIRE_HUMAN_TOKEN")
    return found


def main() -> None:
    """Console-script entry point (`wire = "cli:main"`)."""
    cli(prog_name="wire")
