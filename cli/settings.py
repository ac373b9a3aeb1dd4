"""`wire settings`: show the project's settings; a coordinator (or a human with --key) changes them.

Route: `/v1/project/settings` (docs/API.md, "Routes").
"""

from __future__ import annotations

from typing import Any

import click

from cli import output
from cli.client import Client, WireError, pass_client
from cli.escalations import key_option

#: Bounds of --idle-claim-minutes (the server checks them too).
MIN_IDLE, MAX_IDLE = 1, 1440


@click.command()
@click.option("--ready-scope", type=click.Choice(["all", "role"]),
              help="What `wire ready` shows: all beads (your role's first) or only your role's and unroled "
                   "ones.")
@click.option("--idle-claim-minutes", type=click.IntRange(MIN_IDLE, MAX_IDLE), metavar="N",
              help="Minutes without a command or file change before a claim's holder is idle with claim.")
@key_option
@output.json_option
@pass_client
def settings(client: Client, ready_scope: str | None, idle_claim_minutes: int | None,
             key: str | None) -> None:
    """Show the project's settings; with an option, change it (a coordinator, or --key)."""
    changes = {"ready_scope": ready_scope, "idle_claim_minutes": idle_claim_minutes}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        output.emit(client.project_settings(key), _print)
        return
    try:
        answer = client.set_project_settings(changes, key)
    except WireError as exc:
        if exc.code == "forbidden":
            exc.hint = "a coordinator changes project settings, or a human with --key (WIRE_PROJECT_KEY)"
        raise
    output.emit(answer, _print)


def _print(answer: dict[str, Any]) -> None:
    for name, value in answer.items():
        click.echo(f"{name.replace('_', '-')}: {output.clean(value)}")
