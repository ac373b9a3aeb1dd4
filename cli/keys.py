"""Key management, for humans holding the project key: `wire key rotate` (a new project key, the
old one dies at once), `wire workspace revoke ALIAS` (kill that workspace's token) and
`wire workspace role ALIAS ROLE` (the only way into or out of coordinator).

Routes: `POST /v1/project/key/rotate`, `POST /v1/workspaces/<alias>/revoke`,
`PUT /v1/workspaces/<alias>/role` (docs/API.md, "Keys"). The key comes only from `--key` /
`WIRE_PROJECT_KEY`, as for `wire respond`: never from keys.json, which any agent started in that
human's worktree could read through `wire` (it serves `wire init` joining a project).
"""

from __future__ import annotations

from typing import Any

import click

from cli import local, output
from cli.client import Client, WireError, pass_client
from cli.escalations import forbidden_hint, key_option, need_key


def _project_option(f: Any) -> Any:
    return click.option("--project", "slug", metavar="SLUG",
                        help="Project (default: this worktree's).")(f)


def _slug(client: Client, slug: str | None) -> str:
    if slug:
        return slug
    if client.workspace is not None and client.workspace.project:
        return client.workspace.project
    raise click.UsageError("missing --project SLUG (no workspace in this directory)")




@click.group()
def key() -> None:
    """Manage the project key (humans only) and make join keys (humans and coordinators)."""


@key.command()
@_project_option
@key_option
@output.json_option
@pass_client
def rotate(client: Client, slug: str | None, key: str | None) -> None:
    """Replace the project key: the new one is shown once and saved; the old one stops working."""
    slug = _slug(client, slug)
    try:
        answer = client.call("rotate_key", token=need_key(key))
    except WireError as exc:
        raise forbidden_hint(exc) from None
    try:
        answer["key_file"] = str(local.save_key(client.url, slug, answer["project_key"]))
    except (WireError, OSError) as exc:
        output.warn(f"could not save the new project key ({exc}): copy it from the output now")
    output.emit(answer, _print_rotated)


@key.command("join")
@_project_option
@click.option("--key", envvar="WIRE_PROJECT_KEY", metavar="KEY",
              help="The project key (env WIRE_PROJECT_KEY); without it, this worktree's token "
                   "(coordinators).")
@output.json_option
@pass_client
def join(client: Client, slug: str | None, key: str | None) -> None:
    """A single-use join key (24 h) that lets one agent join: `wire init --project P --join-key KEY`."""
    slug = _slug(client, slug)
    try:
        answer = client.call("join_key", token=key)  # None: this worktree's token
    except WireError as exc:
        if exc.code == "forbidden":
            exc.hint = "a coordinator's worktree, or a human with the project key (--key), makes join keys"
        raise
    output.emit(answer, _print_join_key)


def _print_join_key(answer: dict[str, Any]) -> None:
    click.echo(f"join key for project {answer['project']} (one agent, until {answer['expires_at']}):")
    click.echo(f"\n  {answer['join_key']}\n")
    click.echo(f"the agent runs: {answer['join']}")


def _print_rotated(answer: dict[str, Any]) -> None:
    click.echo(f"rotated the key of project {answer['project']}; the old key no longer works")
    click.echo(f"\nproject key: {answer['project_key']}")
    saved = f"saved in {answer['key_file']}; " if answer.get("key_file") else ""
    click.echo(f"  {saved}it is shown only this once: give it to the humans who need it")


@click.group()
def workspace() -> None:
    """Manage the project's workspaces (humans only)."""


@workspace.command()
@click.argument("alias")
@click.option("--project", "_slug", metavar="SLUG", hidden=True, help="Ignored: the key names the project.")
@key_option
@output.json_option
@pass_client
def revoke(client: Client, alias: str, _slug: str | None, key: str | None) -> None:
    """Kill ALIAS's token: its calls fail from now on and its claims go stale."""
    try:
        answer = client.call("revoke", alias=alias, token=need_key(key))
    except WireError as exc:
        raise forbidden_hint(exc) from None
    output.emit(answer, _print_revoked)


def _print_revoked(answer: dict[str, Any]) -> None:
    verb = "was already revoked" if answer.get("already") else "is revoked: its token no longer works"
    click.echo(f"{output.clean(answer['alias'])} {verb}")
    if answer.get("stale_claims"):
        click.echo(f"  claims now stale (anyone may take them): {', '.join(answer['stale_claims'])}")


@workspace.command()
@click.argument("alias")
@click.argument("role")
@key_option
@output.json_option
@pass_client
def role(client: Client, alias: str, role: str, key: str | None) -> None:
    """Give ALIAS the role ROLE (its playbook); into or out of coordinator only this way."""
    output.emit(set_role(client, alias, role, need_key(key)), _print_role)


def set_role(client: Client, alias: str, role: str, key: str) -> Any:
    """`PUT /v1/workspaces/<alias>/role` with the project key.  Raises: WireError: refused."""
    try:
        return client.call("set_role", alias=alias, role=role, token=key)
    except WireError as exc:
        raise forbidden_hint(exc) from None


def _print_role(answer: dict[str, Any]) -> None:
    previous = answer.get("previous")
    was = "" if previous == answer.get("role") else f" (was {output.clean(previous)})"
    click.echo(f"{output.clean(answer['alias'])} is now {output.clean(answer['role'])}{was}")
