"""The `wire` commands generated from the operations table (cli/operations.py): one call, the answer
printed by the row's printer (or as JSON with `--json`).

`wire show ID` is the row `bead`'s `Command("show", ...)`; cli/__init__.py lists these commands as
`cli.generated:<name>` and builds one only when it runs; subcommands of a hand-written group
(`mail sent`) are added to it with `command("mail sent")`.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import click

from cli import operations, output
from cli.client import Client, pass_client
from cli.opspec import Command, Operation, Option


def resolve(target: str) -> Any:
    """The function `module:name` names (a printer)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def click_param(option: Option) -> click.Parameter:
    """The click argument or option of a row's `Option`, its value under the parameter's name."""
    if option.argument:
        return click.Argument([option.param], metavar=option.metavar)
    kinds: dict[str, dict[str, Any]] = {"flag": {"is_flag": True}, "count": {"type": click.IntRange(min=1)}}
    return click.Option([*option.decls, option.param], metavar=option.metavar, help=option.help,
                        **kinds.get(option.type, {}))


def build(op: Operation, spec: Command) -> click.Command:
    """The command `spec` of row `op`."""
    printer = resolve(spec.printer)

    @pass_client
    def run(client: Client, **given: Any) -> None:
        values = {option.param: given[option.param] for option in spec.options}
        render = functools.partial(printer, **{key: values[name] for key, name in spec.printer_args})
        output.emit(client.perform(op.name, **values), render)

    params = [*(click_param(option) for option in spec.options), output.json_param()]
    return click.Command(spec.name.rsplit(" ", 1)[-1], callback=run, params=params, help=spec.help)


def command(name: str) -> click.Command:
    """The generated command `name` (`show`, `mail sent`).  Raises: KeyError: no row makes it."""
    return build(*operations.commands()[name])


def __getattr__(name: str) -> click.Command:
    """`cli.generated:show` (cli/__init__.py's lazy table) is the generated `show` command."""
    try:
        return command(name)
    except KeyError:
        raise AttributeError(name) from None
