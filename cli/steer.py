"""`wire assign`, `wire unassign`, `wire agent pause|resume`, `wire audit`: steering agents and seeing
who did what. For coordinators (their own workspace token) and humans (`--key`, env WIRE_PROJECT_KEY).

Routes: `/v1/beads/<id>/assign`, `/v1/workspaces/<alias>/pause`, `/v1/audit` (docs/API.md).
"""

from __future__ import annotations

import json
from typing import Any

import click

from cli import output
from cli.client import Client, WireError, pass_client
from cli.escalations import key_option

STEER_HINT = "a coordinator steers with its own workspace; a human passes --key (env WIRE_PROJECT_KEY)"


def _steering(call: Any) -> Any:
    """The answer; a refusal says who may do this."""
    try:
        return call()
    except WireError as exc:
        if exc.code == "forbidden":
            exc.hint = STEER_HINT
        raise


@click.command()
@click.argument("ref", metavar="ID")
@click.argument("alias", metavar="ALIAS")
@click.option("--reason", default="", metavar="R", help="Why (the assignee reads it).")
@key_option
@output.json_option
@pass_client
def assign(client: Client, ref: str, alias: str, reason: str, key: str | None) -> None:
    """Assign a bead to an agent: it heads their ready and prime, others' claims are refused (exit 3)."""
    output.emit(_steering(lambda: client.assign(ref, alias, reason, key)), _print_assigned)


@click.command()
@click.argument("ref", metavar="ID")
@key_option
@output.json_option
@pass_client
def unassign(client: Client, ref: str, key: str | None) -> None:
    """Remove a bead's assignment: anyone may claim it again."""
    output.emit(_steering(lambda: client.unassign(ref, key)), _print_assigned)


def _print_assigned(bead: dict[str, Any]) -> None:
    a = bead.get("assignment")
    ident = output.clean(bead.get("id"))
    if not a:
        click.echo(f"{ident} is not assigned")
        return
    why = f": {output.clean(a.get('reason'))}" if a.get("reason") else ""
    click.echo(f"{ident} is assigned to {output.clean(a.get('to'))} by {output.clean(a.get('by'))}{why}")


@click.group()
def agent() -> None:
    """Steer an agent: pause it (no new claims) and resume it."""


@agent.command()
@click.argument("alias", metavar="ALIAS")
@click.option("--reason", default="", metavar="R", help="Why (its banner and prime show it).")
@key_option
@output.json_option
@pass_client
def pause(client: Client, alias: str, reason: str, key: str | None) -> None:
    """Pause an agent: its `wire claim` refuses new claims (exit 3) until resumed."""
    output.emit(_steering(lambda: client.pause(alias, reason, key)), _print_pause)


@agent.command()
@click.argument("alias", metavar="ALIAS")
@key_option
@output.json_option
@pass_client
def resume(client: Client, alias: str, key: str | None) -> None:
    """Resume a paused agent."""
    output.emit(_steering(lambda: client.resume(alias, key)), _print_pause)


def _print_pause(state: dict[str, Any]) -> None:
    p, alias = state.get("paused"), output.clean(state.get("alias"))
    if not p:
        click.echo(f"{alias} is not paused")
        return
    why = f": {output.clean(p.get('reason'))}" if p.get("reason") else ""
    click.echo(f"{alias} is paused by {output.clean(p.get('by'))}{why}")


@click.command()
@click.option("--since", metavar="T", help="From this time on (2026-12-04T12:00:00Z, a date, epoch seconds).")
@click.option("--who", metavar="NAME", help="Only what this agent or person did.")
@click.option("--bead", metavar="ID", help="Only changes to this bead.")
@click.option("--action", metavar="A", help="Only this action (a prefix: `claim` finds claim.created, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), metavar="N", help="At most N rows (default 200).")
@key_option
@output.json_option
@pass_client
def audit(client: Client, since: str | None, who: str | None, bead: str | None, action: str | None,
          limit: int | None, key: str | None) -> None:
    """Who changed what, when, from where (newest first; a coordinator, or --key)."""
    output.emit(_steering(lambda: client.audit(since, who, bead, action, limit, key)), _print_audit)


def _print_audit(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no audit entries match")
        return
    table = [(output.clean(r.get("at", ""))[:19].replace("T", " "),
              f"{output.clean(r.get('who'))} ({output.clean(r.get('credential') or r.get('who_kind'))})",
              output.clean(r.get("action")), output.clean(r.get("bead") or "-"),
              output.snippet(json.dumps(r.get("detail") or {}, sort_keys=True), 80),
              output.clean(r.get("address") or "-")) for r in rows]
    click.echo(output.table(table, ("when (UTC)", "who", "action", "bead", "detail", "from")))
