"""Personal human accounts: `wire human add|list|remove|invite|login|whoami`.

Adding, inviting and removing a person needs an admin: the project key (`--key`, WIRE_PROJECT_KEY)
or an admin's own token (`wire --as NAME`, WIRE_HUMAN_TOKEN). `wire human login LINK` redeems an
invite link (or takes a personal token) and saves the token in keys.json under the person's name, so
`wire --as NAME <any command>` acts as that person with their role's permissions (CLI parity with
the dashboard). Routes: docs/API.md, "Humans".
"""

from __future__ import annotations

from typing import Any

import click

from cli import local, output
from cli.client import Client, WireError, pass_client
from cli.escalations import forbidden_hint, key_option, need_key

ROLES = ("viewer", "lead", "admin")
INVITE_PREFIX = "bw_hi_"
TOKEN_PREFIX = "bw_ht_"


@click.group()
def human() -> None:
    """Persons of the project: add, list, remove; log in as yourself for the CLI."""


def _admin_call(client: Client, key: str | None, operation: str, /, **values: Any) -> Any:
    """`operation` of the table with the project key; a "forbidden" answer gets its hint."""
    try:
        return client.call(operation, token=need_key(key), **values)
    except WireError as exc:
        raise forbidden_hint(exc) from None


@human.command()
@click.argument("name")
@click.option("--email", default="", metavar="EMAIL", help="The person's email (shown in `wire human list`).")
@click.option("--role", type=click.Choice(ROLES), default="lead", show_default=True,
              help="viewer: reads; lead: changes work; admin: also people, keys, policies, webhooks.")
@key_option
@output.json_option
@pass_client
def add(client: Client, name: str, email: str, role: str, key: str | None) -> None:
    """Add a person; prints their one-time invite link (it works once, for 7 days)."""
    answer = _admin_call(client, key, "add_human", name=name, email=email, role=role)
    output.emit({**answer, "url": client.url + answer["invite_path"]}, _print_invite)


@human.command()
@click.argument("name")
@key_option
@output.json_option
@pass_client
def invite(client: Client, name: str, key: str | None) -> None:
    """A new invite link for a person (the previous one stops working)."""
    answer = _admin_call(client, key, "invite_human", name=name)
    output.emit({**answer, "url": client.url + answer["invite_path"]}, _print_invite)


def _print_invite(answer: dict[str, Any]) -> None:
    click.echo(answer["url"])
    click.echo(f"invite for {output.clean(answer['name'])} ({answer['role']}) of "
               f"{output.clean(answer['project'])}: it works once, until {answer['invite_expires_at']}; "
               "open it in a browser, or run `wire human login LINK`", err=True)


@human.command(name="list")
@key_option
@output.json_option
@pass_client
def list_humans(client: Client, key: str | None) -> None:
    """The persons of the project and their roles."""
    output.emit(_admin_call(client, key, "humans"), _print_people)


def _print_people(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no persons yet: `wire human add NAME --role lead`")
        return
    click.echo(output.table([[output.clean(r["name"]), r["role"], output.clean(r["email"]),
                              "yes" if r["joined"] else "invited"] for r in rows],
                            ["name", "role", "email", "joined"]))


@human.command()
@click.argument("name")
@key_option
@output.json_option
@pass_client
def remove(client: Client, name: str, key: str | None) -> None:
    """Remove a person: their token and dashboard sessions stop working at once."""
    answer = _admin_call(client, key, "remove_human", name=name)
    output.emit(answer, lambda a: click.echo(f"removed {output.clean(a['name'])}"))


@human.command()
@click.argument("link")
@output.json_option
@pass_client
def login(client: Client, link: str) -> None:
    """Redeem an invite LINK (or take a personal token) and save the token under your name in keys.json;
    then `wire --as NAME ...` acts as you."""
    secret = link.strip().rsplit("/", 1)[-1]
    if secret.startswith(INVITE_PREFIX):
        answer = client.call("redeem_invite", invite=secret, auth=False, token=client.person_token or None)
        token = answer["token"]
    elif secret.startswith(TOKEN_PREFIX):
        me = client.call("human_me", token=secret)
        answer, token = {"name": me["name"], "role": me["role"], "project": me["project"]}, secret
    else:
        raise click.BadParameter("give the invite link (…/invite/bw_hi_…) or a personal token (bw_ht_…)")
    path = local.save_human_token(client.url, answer["project"], answer["name"], token)
    output.emit({"name": answer["name"], "role": answer["role"], "project": answer["project"],
                 "key_file": str(path)}, _print_login)


def _print_login(answer: dict[str, Any]) -> None:
    name = output.clean(answer["name"])
    click.echo(f"logged in as {name} ({answer['role']}) of {output.clean(answer['project'])}; "
               f"token saved in {answer['key_file']}")
    click.echo(f"act as yourself with `wire --as {name} ...`; `wire --as {name} dashboard` prints a login "
               "link")


@human.command()
@output.json_option
@pass_client
def whoami(client: Client) -> None:
    """The person `--as NAME` (or WIRE_HUMAN_TOKEN) acts as, and every project of their login."""
    if not client.person_token:
        raise click.UsageError("run it as a person: `wire --as NAME human whoami`")
    answer = client.call("human_me")
    output.emit(answer, lambda a: click.echo(
        f"{output.clean(a['name'])} ({a['role']}) of {output.clean(a['project'])}; projects: "
        + ", ".join(f"{output.clean(p['project'])} ({p['role']})" for p in a["projects"])))
