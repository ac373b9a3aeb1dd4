"""Onboarding: `wire prime` (what an agent needs when it starts), `wire handoff` (what carries over
to the next run) and `wire add-worktree` (a new agent beside this one).

Routes: `GET /v1/prime`, `POST /v1/handoffs`, `GET /v1/handoffs/latest` (docs/API.md, "Onboarding").
Coding agents start every run with no memory of the last: the handoff is how work carries over, and
`wire prime` (run by the agent's start hook, see `wire setup`) shows it first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from cli import local, output
from cli.client import Client, NotInitialised, WireError, pass_client
from cli.identity import JOIN_HINT, _init_body, _register, _save, join_key

#: Characters of a bead title and of a mail subject on one prime line.
TITLE = 70
#: Prefix of the branch `wire add-worktree` creates.
BRANCH_PREFIX = "wire/"


# -- API calls (shared with `wire mcp`) ----------------------------------------------------------

def fetch_prime(client: Client) -> Any:
    """`GET /v1/prime`: handoff, identity, playbook summary, claims, ready, unread mail, who is online."""
    return client.call("prime")


def leave_handoff(client: Client, text: str, to: str | None = None) -> Any:
    """`POST /v1/handoffs`: a note for our next run, or for alias `to` taking over."""
    return client.call("handoff", text=text, to=to)


def latest_handoff(client: Client) -> Any:
    """`GET /v1/handoffs/latest`: `{"handoff": ... | None}`."""
    return client.call("latest_handoff")


# -- wire prime --------------------------------------------------------------------------------

@click.command()
@output.json_option
@pass_client
def prime(client: Client) -> None:
    """What you need now: the last handoff, who you are, your playbook, claims to resume, ready work, mail,
    team."""
    output.emit(fetch_prime(client), print_prime)


def print_prime(p: dict[str, Any]) -> None:
    for block in (_paused_block(p.get("paused")), _assigned_block(p.get("assigned") or []),
                  _handoff_block(p.get("handoff")), _me_block(p.get("me") or {}),
                  _playbook_block(p.get("playbook")), _claims_block(p.get("claims") or []),
                  _ready_block(p.get("ready") or []), _mail_block(p.get("mail") or {}),
                  _online_block(p.get("online") or [])):
        for line in block:
            click.echo(line)


def _paused_block(paused: dict[str, Any] | None) -> list[str]:
    """First of all: a paused agent claims nothing new (store/steer.py)."""
    if not paused:
        return []
    why = f": {output.clean(paused.get('reason'))}" if paused.get("reason") else ""
    return [f"PAUSED: paused by {output.clean(paused.get('by'))}{why}. Claim nothing new until resumed; "
            "finish or hand off what you hold."]


def _assigned_block(beads: list[dict[str, Any]]) -> list[str]:
    """Beads a coordinator or a human gave you: before anything else to do."""
    if not beads:
        return []
    lines = ["ASSIGNED TO YOU (wire claim ID):"]
    for b in beads:
        a = b.get("assignment") or {}
        why = f": {output.snippet(a.get('reason'), TITLE)}" if a.get("reason") else ""
        lines += [_bead_line(b), f"      assigned to you by {output.clean(a.get('by'))}{why}"]
    return lines


def _handoff_block(h: dict[str, Any] | None) -> list[str]:
    if not h:
        return ["HANDOFF: none (leave one before you stop: wire handoff TEXT)"]
    by = "you, last run" if not h.get("to") else output.clean(h.get("from"))
    body = output.clean(h.get("body"), newlines=True).strip("\n")
    return [f"HANDOFF from {by} ({output.ago(h.get('created_at'))}):",
            *("  " + line for line in body.split("\n"))]


def _me_block(me: dict[str, Any]) -> list[str]:
    human = f" ({output.clean(me['human'])})" if me.get("human") else ""
    slug = output.clean((me.get("project") or {}).get("slug", "?"))
    role, branch = output.clean(me.get("role") or "?"), output.clean(me.get("branch") or "-")
    return [f"YOU: {output.clean(me.get('alias', '?'))}{human} · {role} · project {slug} · branch {branch}"]


def _playbook_block(pb: dict[str, Any] | None) -> list[str]:
    if not pb or not pb.get("summary"):
        return []
    text = output.clean(pb["summary"], newlines=True)
    more = " (summary; full: wire policy)" if pb.get("full") else ""
    return [f"PLAYBOOK {output.clean(pb.get('role') or '')} v{pb.get('version')}{more}:",
            *("  " + line for line in text.split("\n") if line.strip())]


def _bead_line(b: dict[str, Any]) -> str:
    return (f"  {output.clean(b.get('id'))}  {output.priority(b.get('priority'))}  "
            f"{output.clean(b.get('issue_type') or '')}  {output.snippet(b.get('title'), TITLE)}")


def _claims_block(claims: list[dict[str, Any]]) -> list[str]:
    if not claims:
        return ["CLAIMS: none"]
    return ["RESUME FIRST (your claims):", *(_bead_line(b) for b in claims)]


def _ready_block(ready: list[dict[str, Any]]) -> list[str]:
    if not ready:
        return ["READY: nothing (wire watch waits for work)"]
    return ["READY (wire claim ID):", *(_bead_line(b) for b in ready)]


def _mail_block(mail: dict[str, Any]) -> list[str]:
    count = mail.get("unread") or 0
    if not count:
        return ["MAIL: none unread"]
    lines = [f"MAIL: {count} unread (wire mail open)"]
    for m in mail.get("latest") or []:
        sender = output.clean(m.get("from") or m.get("kind") or "?")
        lines.append(f"  #{m.get('id')} {sender}: {output.snippet(m.get('subject'), TITLE)}")
    return lines


def _online_block(online: list[dict[str, Any]]) -> list[str]:
    if not online:
        return ["ONLINE: nobody else"]
    return ["ONLINE: " + ", ".join(_member(m) for m in online)]


def _member(m: dict[str, Any]) -> str:
    holds = ", ".join(output.clean(c) for c in m.get("claims") or [])
    notes = [output.clean(m.get("role") or "?"),
             output.clean(m.get("branch") or "-")] + ([holds] if holds else [])
    return f"{output.clean(m.get('alias'))} ({'; '.join(notes)})"


# -- wire handoff ------------------------------------------------------------------------------

@click.command()
@click.argument("text", required=False)
@click.option("--to", "to", metavar="ALIAS", help="The agent taking over (default: your own next run).")
@output.json_option
@pass_client
def handoff(client: Client, text: str | None, to: str | None) -> None:
    """Leave TEXT for your next run (or --to the agent taking over); without TEXT, show the latest.

    Say what is done, what is next and what to watch out for. TEXT '-' reads stdin.
    """
    if text is None:
        if to:
            raise click.UsageError("--to needs TEXT")
        output.emit(latest_handoff(client), lambda a: click.echo("\n".join(_handoff_block(a.get("handoff")))))
        return
    body = output.text_or_stdin(text)
    if not body.strip():
        raise click.UsageError("the handoff is empty")
    output.emit(leave_handoff(client, body, to), _print_left)


def _print_left(h: dict[str, Any]) -> None:
    who = f"for {output.clean(h['to'])} (they get a notice)" if h.get("to") else \
        "for your next run (wire prime)"
    click.echo(f"handoff #{h.get('id')} left {who}")


# -- wire add-worktree -------------------------------------------------------------------------

@click.command("add-worktree")
@click.argument("role")
@click.option("--alias", help="Alias of the new agent (default: the server picks one).")
@click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path),
              help="Where to create it (default: ../<repo>-<alias or role>).")
@click.option("--branch", help=f"New branch (default: {BRANCH_PREFIX}<alias or role>).")
@click.option("--base", default="HEAD", show_default=True, help="Commit the new branch starts from.")
@click.option("--human", metavar="NAME",
              help="The human the new agent works for (default: this workspace's).")
@click.option("--key", envvar="WIRE_PROJECT_KEY", metavar="KEY",
              help="Project key (env WIRE_PROJECT_KEY; default: the saved one).")
@output.json_option
@pass_client
def add_worktree(client: Client, role: str, alias: str | None, path: Path | None, branch: str | None,
                 base: str, human: str | None, key: str | None) -> None:
    """Create a git worktree beside this repo on a new branch and register it as a new agent (ROLE) of
    this project; its identity is its own, its project the same."""
    ws = client.workspace
    if ws is None or not ws.project:
        raise NotInitialised()
    repo = local.git_repo(ws.root)
    name = _slug(alias or role)
    target = (path or repo.root.parent / f"{repo.root.name}-{name}").absolute()
    branch = branch or f"{BRANCH_PREFIX}{name}"
    if target.exists():
        raise WireError(f"{target} already exists: pick another --path", code="exists")
    try:
        local.git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", cwd=repo.root)
    except WireError as exc:  # git's own words ("not a valid object name: 'HEAD'") do not say what to do
        raise WireError(f"{base!r} names no commit in {repo.root}: a new branch needs one to start from "
                        "(commit something first, or pass --base)", code="git") from exc
    human = human or client.whoami().get("human") or None  # the same human's agent, like this one
    local.git("worktree", "add", "-b", branch, str(target), base, cwd=repo.root)
    try:
        result = _init_there(client, target, ws.project, alias, role, human, key)
    except BaseException:  # undo the worktree, then report the real error
        _undo(repo.root, target, branch)
        raise
    result.update({"path": str(target), "branch": branch})
    output.emit(result, _print_added)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "agent"


def _init_there(client: Client, root: Path, slug: str, alias: str | None, role: str, human: str | None,
                key: str | None) -> dict:
    """`wire init` in the new worktree: a new workspace (new token) in the same project."""
    url = client.url
    key = key or join_key(url, slug, role)
    if not key:
        raise WireError(f"no project key for {slug} on {url}: a new agent joins with the key",
                        code="no_key", hint=JOIN_HINT)
    there = Client(url, timeout=client.timeout, start=root, auto_reserve=False)
    repo = local.git_repo(root)
    answer = _register(there, _init_body(slug, repo, alias, role, human, None), None, key)
    return _save(answer, url, repo)


def _undo(root: Path, target: Path, branch: str) -> None:
    """Remove a worktree whose registration failed, and its branch (best effort)."""
    for args in (("worktree", "remove", "--force", str(target)), ("branch", "-D", branch)):
        try:
            local.git(*args, cwd=root)
        except WireError:
            pass


def _print_added(r: dict[str, Any]) -> None:
    ws = r["workspace"]
    click.echo(f"created worktree {r['path']} on branch {r['branch']}")
    click.echo(f"joined project {r['project']['slug']} as {ws['alias']} ({ws.get('role') or '?'})")
    click.echo(f"next: cd {r['path']} && wire setup claude|codex|cursor, then start the agent there")
