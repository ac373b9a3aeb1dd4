"""Identity commands: `wire init` (register this worktree), `wire whoami`, `wire status`.

Routes: `POST /v1/init`, `GET /v1/whoami`, `GET /v1/status` (docs/API.md).
"""

from __future__ import annotations

# what `socket` re-exports, without its enums of every constant built on import (start-up time)
from _socket import gethostname
from pathlib import Path
from typing import Any

import click

from cli import local, output
from cli.client import Client, WireError, pass_client

#: Role of a new workspace when `--role` is not given.
DEFAULT_ROLE = "developer"
#: The role only a human gives (into it or out of it): the key must come from --key or WIRE_PROJECT_KEY.
COORDINATOR = "coordinator"
COORDINATOR_HINT = ("a human makes a workspace coordinator (or takes it back): pass the project key with "
                    "--key "
                    "or WIRE_PROJECT_KEY (the one saved in keys.json is not used for this)")
#: Error codes of an init whose bearer was not accepted.
REFUSED = ("unauthorized", "forbidden")
JOIN_HINT = "join an existing project with --key KEY (or WIRE_PROJECT_KEY); ask a teammate for the key"
TEAM_HEADERS = ("ALIAS", "HUMAN", "ROLE", "REPO", "BRANCH", "HOST", "STATE", "CLAIMS", "LAST SEEN")


# -- init ------------------------------------------------------------------------------------

@click.command()
@click.option("--project", "slug", metavar="SLUG",
              help="Project to create or join (default: this worktree's).")
@click.option("--alias", help="Name the other agents see you by (default: the server picks one).")
@click.option("--role", help=f"Role whose playbook you follow (default for a new workspace: {DEFAULT_ROLE}).")
@click.option("--human", metavar="NAME", help="The human you work for (default: git config user.name).")
@click.option("--key", envvar="WIRE_PROJECT_KEY", metavar="KEY",
              help="Project key, to join an existing project (env WIRE_PROJECT_KEY; default: the saved one, "
                   "except for the coordinator role).")
@click.option("--join-key", "invite", envvar="WIRE_JOIN_KEY", metavar="KEY",
              help="A single-use join key (bw_jk_...; env WIRE_JOIN_KEY) from `wire key join` or the "
                   "dashboard's "
                   "Add an agent page: registers this worktree once, never as coordinator.")
@click.option("--admin-token", envvar="WIRE_ADMIN_TOKEN", metavar="TOKEN",
              help="The server's admin token, to create a project on a server reachable beyond its own "
                   "machine (env WIRE_ADMIN_TOKEN).")
@output.json_option
@pass_client
def init(client: Client, slug: str | None, alias: str | None, role: str | None, human: str | None,
         key: str | None, invite: str | None, admin_token: str | None) -> None:
    """Register this worktree with the server (creating the project if it is new)."""
    if invite and role == COORDINATOR:
        raise click.UsageError("a join key never registers a coordinator: join with another --role; a human "
                               "then sets the role (wire workspace role ALIAS coordinator --key KEY)")
    repo = local.git_repo(Path.cwd())
    existing = local.read_workspace(repo.root)
    slug = _project_slug(slug, existing)
    url = client.url
    own = existing if existing and existing.project == slug and existing.url == url else None
    body = _init_body(slug, repo, alias, role, human, own)
    role_now = body["role"] or (own.data.get("role") if own else None)  # what a fallback join would ask for
    given = invite or key  # a join key is used only when given: it is worth one registration
    answer = _register_as(client, body, own, given or join_key(url, slug, role_now, joining=own is None), key,
                          admin_token)
    output.emit(_save(answer, url, repo), _print_init)


def join_key(url: str, slug: str, role: str | None, joining: bool = True) -> str | None:
    """The project key saved on this machine, except for the coordinator role (a human's call: it
    needs the key given explicitly, like every human-only command).

    Raises:
        WireError: a new workspace would join as coordinator with only the saved key.
    """
    saved = local.find_key(url, slug)
    if saved and role == COORDINATOR:
        if joining:
            raise WireError("joining as coordinator needs the project key given explicitly",
                            code="key_required", hint=COORDINATOR_HINT)
        return None
    return saved


def _register_as(client: Client, body: dict[str, Any], own: local.Workspace | None, key: str | None,
                 explicit: str | None, admin_token: str | None = None) -> Any:
    """`_register`; a re-init into or out of coordinator first has a human (the explicit key) set the role."""
    saved_role = own.data.get("role") if own else None
    try:
        return _register(client, body, own.token if own else None, key, saved_role, admin_token)
    except WireError as exc:
        if exc.code != "role_needs_key" or own is None:
            raise
        if not explicit:
            exc.hint = COORDINATOR_HINT
            raise
    from cli.keys import set_role  # noqa: PLC0415 - start-up time: whoami prints with this

    set_role(client, own.alias or "", body["role"], explicit)
    return _register(client, body, own.token, explicit)


def _project_slug(slug: str | None, existing: local.Workspace | None) -> str:
    if slug:
        return slug
    if existing and existing.project:
        return existing.project
    raise click.UsageError("missing --project SLUG (the project to create or join)")


def _init_body(slug: str, repo: local.GitRepo, alias: str | None, role: str | None, human: str | None,
               own: local.Workspace | None) -> dict[str, Any]:
    """The `/v1/init` body; a re-init sends only what the user changed, so the server keeps the rest."""
    if own is None:
        role = role or DEFAULT_ROLE
        human = human or local.git_user_name(repo.root)
    # a re-init without --role sends none: the server keeps the current one (a human may have changed
    # it since this file was written, and resending the old one would try to undo that)
    return {"project": slug, "repo_origin": repo.origin, "alias": alias or (own.alias if own else None),
            "role": role, "human": human, "hostname": gethostname(), "path": str(repo.root),
            "branch": repo.branch}


def _register(client: Client, body: dict[str, Any], own_token: str | None, key: str | None,
              saved_role: str | None = None, admin_token: str | None = None) -> Any:
    """POST /v1/init with the workspace's own token, falling back to the project key if it is refused
    (then as a new workspace, with the role this worktree had: `saved_role`)."""
    if own_token and key:
        try:
            return client.init(body, own_token)
        except WireError as exc:
            if exc.code not in REFUSED:
                raise
        body = {**body, "role": body.get("role") or saved_role}
    try:
        return client.init(body, key or own_token, admin_token)
    except WireError as exc:
        if exc.code in REFUSED:
            exc.hint = JOIN_HINT
        raise


def _save(answer: dict[str, Any], url: str, repo: local.GitRepo) -> dict[str, Any]:
    """Store the identity, hide `.wire/` from git, save a new project key; return what to print."""
    ws, project = answer["workspace"], answer["project"]
    data = {"url": url, "project": project["slug"], "alias": ws["alias"], "workspace_id": ws["id"],
            "token": answer["token"], "repo": ws.get("repo") or repo.origin, "role": ws.get("role")}
    result = {k: v for k, v in answer.items() if k != "token" and v is not None}
    if answer.get("project_key"):  # first: the server shows the key only this once
        result["key_file"] = _save_key(url, project["slug"], answer["project_key"])
    result["workspace_file"] = str(local.write_workspace(repo.root, data))
    local.ensure_excluded(repo.common_dir)
    return result


def _save_key(url: str, slug: str, key: str) -> str | None:
    """Save a new project key; on failure warn (the key is still printed) and return None."""
    try:
        return str(local.save_key(url, slug, key))
    except (WireError, OSError) as exc:
        output.warn(f"could not save the project key ({exc}): copy it from the output now")
        return None


def _print_init(result: dict[str, Any]) -> None:
    ws, slug = result["workspace"], result["project"]["slug"]
    verb = "created project" if result.get("project_key") else "joined project"
    click.echo(f"{verb} {slug} as {ws['alias']} ({ws.get('role') or '?'})")
    click.echo(f"  {_where(ws)}")
    click.echo(f"  identity saved in {result['workspace_file']}")
    if result.get("project_key"):
        _print_key(result["project_key"], slug, result.get("key_file"))


def _print_key(key: str, slug: str, key_file: str | None) -> None:
    click.echo(f"\nproject key: {key}")
    click.echo("  keep it safe: it is shown only this once and lets anyone join the project.")
    saved = f"saved in {key_file}; " if key_file else ""
    click.echo(f"  {saved}teammates join with: wire init --project {slug} --key KEY")


# -- whoami / status (the commands are generated: cli/ops_work.py) --------------------------


def _print_whoami(me: dict[str, Any]) -> None:
    click.echo(_identity(me, me.get("project")))
    click.echo(_where(me))
    for claim in me.get("claims") or []:
        click.echo(f"holds {_claim_text(claim)}  {claim.get('title', '')}".rstrip())


def _print_status(answer: dict[str, Any]) -> None:
    me = answer.get("me") or {}
    click.echo(_identity(me, answer.get("project")))
    team = answer.get("team") or []
    click.echo()
    if not team:
        click.echo("no workspaces in the team yet")
        return
    click.echo(output.table([_member_row(w, me.get("id")) for w in team], TEAM_HEADERS))
    lines = _work_lines(team)
    if lines:
        click.echo()
        for line in lines:
            click.echo(output.clean(line))


def _work_lines(team: list[dict[str, Any]]) -> list[str]:
    """Per claim: `bd-12 bob on wire/bob, 3 ahead, not merged`; per idle holder: `bob idle with claim`."""
    lines = []
    for ws in team:
        if ws.get("idle_with_claim"):
            lines.append(f"{ws.get('alias', '?')} idle with claim for {ws.get('idle_minutes', '?')} min "
                         f"(no command, no file change)")
        for claim in ws.get("claims") or []:
            if claim.get("git"):
                where = output.git_text(claim["git"])
                lines.append(f"{claim.get('bead', '?')} {ws.get('alias', '?')} {where}")
    return lines


def _identity(me: dict[str, Any], project: dict[str, Any] | None) -> str:
    human = f" ({me['human']})" if me.get("human") else ""
    slug = (project or {}).get("slug", "?")
    return f"you are {me.get('alias', '?')}{human} · {me.get('role') or '?'} · project {slug}"


def _member_row(ws: dict[str, Any], my_id: Any) -> list[str]:
    alias = f"{ws.get('alias', '?')}{' (you)' if ws.get('id') == my_id else ''}"
    claims = ", ".join(_claim_text(c) for c in ws.get("claims") or []) or "-"
    state = ws.get("status") or ("online" if ws.get("online") else "offline")
    state = "idle with claim" if ws.get("idle_with_claim") else state
    return [alias, ws.get("human") or "-", ws.get("role") or "-", _repo_name(ws.get("repo")),
            ws.get("branch") or "-", ws.get("hostname") or "-", state, claims,
            output.ago(ws.get("last_seen"))]


def _where(ws: dict[str, Any]) -> str:
    """`repo R · branch B · host H` of a workspace."""
    repo, branch, host = ws.get("repo") or "?", ws.get("branch") or "-", ws.get("hostname") or "?"
    return f"repo {repo} · branch {branch} · host {host}"


def _claim_text(claim: dict[str, Any]) -> str:
    """`bd-12 (epic bd-3, stale)`: the bead, its epic, and whether the claim is stale."""
    notes = [f"epic {claim['epic']['id']}"] if claim.get("epic") else []
    notes += ["stale"] if claim.get("stale") else []
    return f"{claim.get('bead', '?')}{' (' + ', '.join(notes) + ')' if notes else ''}"


def _repo_name(repo: str | None) -> str:
    """`shop` for `github.com/acme/shop`: short enough for a table."""
    return repo.rstrip("/").rsplit("/", 1)[-1] if repo else "-"
