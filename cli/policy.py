"""Policy commands: `wire policy [--role R]` (invariants plus a role's playbook), `history`, `export`,
and, for humans with the project key, `set FILE`, `activate VERSION`, `reset`.

Routes: `/v1/policy...` (docs/API.md, "Policies"). The last policy read is cached in `.wire/` with its
ETag: a read sends `If-None-Match` and a 304 reuses the cache; with the server unreachable, the
cached copy is shown with a warning, so an agent can still read its rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli import local, output
from cli.client import Client, ServerUnreachable, WireError, pass_client
from cli.escalations import forbidden_hint, key_option, need_key


@click.group(invoke_without_command=True)
@click.option("--role", metavar="ROLE", help="Show this role's playbook instead of yours.")
@key_option
@output.json_option
@click.pass_context
def policy(ctx: click.Context, role: str | None, key: str | None) -> None:
    """Show the project's invariants and your role's playbook (or --role ROLE's)."""
    if ctx.invoked_subcommand is not None:
        return
    output.emit(fetch(ctx.ensure_object(Client), role, key), _print_policy)


def cache_path(client: Client, role: str | None) -> Path | None:
    """`.wire/policy.json` (own role) or `.wire/policy-<role>.json`; None outside a workspace."""
    if client.workspace is None:
        return None
    name = f"policy-{role.lower()}.json" if role else "policy.json"
    return client.workspace.root / local.WIRE_DIR / name


def fetch(client: Client, role: str | None, key: str | None) -> dict[str, Any]:
    """The policy view, from the server or (304, or server unreachable) from the cache.

    Raises:
        ServerUnreachable: the server is down and nothing is cached.
    """
    path = cache_path(client, role) if not key else None
    cached = _read_cache(path)
    try:
        answer, etag = client.policy(role, cached.get("etag") if cached else None, key)
    except ServerUnreachable as exc:
        if not cached:
            raise
        output.warn(f"{exc.message}; showing the cached policy v{cached.get('version')}")
        return cached
    if answer is None and cached:
        return cached
    if path is not None and answer is not None:
        _write_cache(path, answer if answer.get("etag") else {**answer, "etag": etag})
    return answer


def _read_cache(path: Path | None) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else None
    except (OSError, ValueError):
        return None  # a damaged cache is just refetched
    return data if isinstance(data, dict) else None


def _write_cache(path: Path, answer: dict[str, Any]) -> None:
    try:
        local.write_private_json(path, answer)
    except OSError as exc:
        output.warn(f"could not cache the policy in {path}: {exc}")


@policy.command()
@key_option
@output.json_option
@pass_client
def history(client: Client, key: str | None) -> None:
    """List the policy versions, newest first."""
    output.emit(client.policy_history(key), _print_history)


@policy.command()
@click.option("--version", "version", type=click.IntRange(min=1), metavar="N",
              help="Default: the active one.")
@key_option
@output.json_option
@pass_client
def export(client: Client, version: int | None, key: str | None) -> None:
    """Print a whole policy bundle as markdown (edit it, then `wire policy set FILE`)."""
    output.emit(client.policy_bundle(version, key), lambda b: click.echo(b.get("markdown", "").rstrip()))


@policy.command("set")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@key_option
@output.json_option
@pass_client
def set_policy(client: Client, file: Any, key: str | None) -> None:
    """Make FILE the new active version (humans). FILE is markdown (`# Invariants`, `# Role: <name>`
    sections) or JSON (`{"invariants", "playbooks": {role: text}}`); '-' reads stdin."""
    body = bundle_body(file.read(), getattr(file, "name", ""))
    try:
        answer = client.set_policy(body, need_key(key))
    except WireError as exc:
        raise forbidden_hint(exc) from None
    output.emit(answer, _print_change)


def bundle_body(text: str, name: str = "") -> dict[str, Any]:
    """The `PUT /v1/policy` body for a file's text: JSON when it is JSON, else markdown.

    Raises:
        click.UsageError: a JSON file that is not a bundle.
    """
    if not (name.endswith(".json") or text.lstrip().startswith("{")):
        return {"markdown": text}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"{name or 'the file'} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not ({"invariants", "playbooks"} & data.keys()):
        raise click.UsageError('a JSON bundle is {"invariants": "...", "playbooks": {"developer": "..."}}')
    return {k: data[k] for k in ("invariants", "playbooks") if data.get(k) is not None}


@policy.command()
@click.argument("version", type=click.IntRange(min=1))
@key_option
@output.json_option
@pass_client
def activate(client: Client, version: int, key: str | None) -> None:
    """Make an earlier VERSION the active one again (humans)."""
    try:
        answer = client.activate_policy(version, need_key(key))
    except WireError as exc:
        raise forbidden_hint(exc) from None
    output.emit(answer, _print_change)


@policy.command()
@key_option
@output.json_option
@pass_client
def reset(client: Client, key: str | None) -> None:
    """Go back to the shipped default policy, as a new version (humans)."""
    try:
        answer = client.reset_policy(need_key(key))
    except WireError as exc:
        raise forbidden_hint(exc) from None
    output.emit(answer, _print_change)


# -- rendering -------------------------------------------------------------------------------

def _print_policy(p: dict[str, Any]) -> None:
    role = p.get("role")
    for_role = f" · role {output.clean(role)}" if role else ""
    click.echo(f"policy v{p.get('version')} ({p.get('source')})" + for_role)
    shown = p.get("playbook_role")
    if role and shown and shown != role:
        click.echo(f"(no playbook for role {output.clean(role)}: showing {output.clean(shown)}'s)")
    click.echo(f"\n# Invariants\n\n{output.clean(p.get('invariants'), newlines=True).rstrip()}")
    if shown:
        click.echo("\n# Playbook: "
                   f"{output.clean(shown)}\n\n{output.clean(p.get('playbook'), newlines=True).rstrip()}")
    elif not role:
        roles = ", ".join(output.clean(r) for r in p.get("roles") or [])
        click.echo(f"\nplaybooks: {roles} (show one with --role ROLE)")


def _print_history(rows: list[dict[str, Any]]) -> None:
    table = [[f"v{r['version']}", "active" if r.get("active") else "", r.get("source", ""),
              output.ago(r.get("created_at")), ", ".join(r.get("roles") or [])] for r in rows]
    click.echo(output.table(table, ("VERSION", "", "SOURCE", "CREATED", "PLAYBOOKS")))


def _print_change(r: dict[str, Any]) -> None:
    if r.get("created") is False:
        click.echo(f"unchanged: v{r['version']} already has this content and is active")
    else:
        click.echo(f"policy v{r['version']} is active; agents see a notice in their banner")
