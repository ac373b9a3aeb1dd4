"""`wire dashboard`: a one-time login link to the project's web dashboard (`POST /v1/dashboard/link`).

With the project key (`--key` or WIRE_PROJECT_KEY, as for every human-only command; never the one
`wire init` saved in keys.json, which an agent in this worktree could use too) the link opens a human
session that may answer escalations; with only this worktree's workspace token it opens a read-only
one (an agent must not be able to answer its own escalations). The link works once, within 10
minutes; docs/API.md, "Dashboard".
"""

from __future__ import annotations

import webbrowser
from typing import Any

import click

from cli import output
from cli.client import Client, pass_client


@click.command()
@click.option("--key", envvar="WIRE_PROJECT_KEY", metavar="KEY",
              help="The project key, for a human session (env WIRE_PROJECT_KEY; without it: read-only).")
@click.option("--open", "open_", is_flag=True, help="Open the link in this machine's browser too.")
@output.json_option
@pass_client
def dashboard(client: Client, key: str | None, open_: bool) -> None:
    """Print a one-time login link to the dashboard (read-only without the project key)."""
    answer = client.dashboard_link(key)
    answer = {**answer, "url": client.url + answer["path"]}
    if open_:
        answer["opened"] = bool(webbrowser.open(answer["url"]))
    output.emit(answer, _print_link)


def _print_link(answer: dict[str, Any]) -> None:
    access = "human: can answer escalations" if answer.get("access") == "human" else \
        "read-only: pass --key to answer escalations"
    click.echo(answer["url"])
    click.echo(f"one-time link to the {output.clean(answer.get('project'))} dashboard ({access}); "
               f"expires {answer.get('expires_at')}", err=True)
