"""Escalation commands: `wire escalate` (an agent asks a human), `wire escalations` (list, show,
webhook) and `wire respond` (a human answers, with the project key).

Routes: `/v1/escalations...`, `/v1/project/webhook` (docs/API.md, "Escalations"). The branch and a
`git status --porcelain` summary are collected here, on the agent's machine; the server attaches the
rest (claims, reservations, recent mail and chat). Agent-written text is printed through `output.clean`.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli import local, output
from cli.client import Client, WireError, pass_client
from cli.local import NOT_WORK

SEVERITIES = ("low", "normal", "high", "critical")
STATUSES = ("pending", "answered", "expired")
#: `git status --porcelain` lines sent with an escalation (the server keeps as many).
MAX_GIT_LINES = 200
#: Seconds `git status` may take before the escalation goes without it.
GIT_TIMEOUT = 10
KEY_HINT = ("act as yourself with `wire --as NAME` (or WIRE_HUMAN_TOKEN), or pass the project key: --key KEY "
            "or WIRE_PROJECT_KEY (it was printed by the first `wire init` and saved in that machine's "
            "keys.json)")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def key_option(f: Any) -> Any:
    """`--key KEY` (env WIRE_PROJECT_KEY): the project key, for what only humans may do."""
    return click.option("--key", envvar="WIRE_PROJECT_KEY", metavar="KEY",
                        help="The project key (humans only; env WIRE_PROJECT_KEY).")(f)


def need_key(key: str | None) -> str:
    """The key, else the person's own token (`wire --as NAME`, WIRE_HUMAN_TOKEN: the server checks
    their role), or an error saying where to get one.  Raises: WireError: none given."""
    if not key:
        ctx = click.get_current_context(silent=True)
        client = ctx.find_root().obj if ctx is not None else None
        key = getattr(client, "person_token", None)
    if not key:
        raise WireError("this needs the project key: humans answer escalations and set policies",
                        code="key_required", hint=KEY_HINT)
    return key


def forbidden_hint(exc: WireError) -> WireError:
    """A 403 from a human-only route: say what was missing."""
    if exc.code == "forbidden":
        exc.hint = KEY_HINT
    return exc


def duration(value: str) -> int:
    """`90`, `90s`, `30m`, `4h`, `1d` in seconds.  Raises: click.BadParameter: anything else."""
    match = _DURATION.match(value)
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 30m, 4h, 1d)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


# -- escalate --------------------------------------------------------------------------------

@click.command()
@click.argument("subject")
@click.argument("situation")
@click.option("--option", "options", multiple=True, metavar="TEXT",
              help="A choice the human can pick (repeatable); put your recommendation first.")
@click.option("--severity", type=click.Choice(SEVERITIES), default="normal", show_default=True,
              help="low: can wait a day; high: blocks you or a teammate; critical: data/security at risk "
                   "now.")
@click.option("--expires-in", "expires_in", metavar="DURATION",
              help="How long to wait for an answer (e.g. 30m, 8h; default 4h, at most 72h).")
@output.json_option
@pass_client
def escalate(client: Client, subject: str, situation: str, options: tuple[str, ...], severity: str,
             expires_in: str | None) -> None:
    """Ask a human: SUBJECT in one line, SITUATION ('-' reads stdin) says what you tried and need.

    Your claims, reservations, branch, `git status` and recent mail are attached. The answer
    arrives in your banner; `wire escalations show ID` shows it in full.
    """
    text = output.text_or_stdin(situation)
    if not text.strip():
        raise click.UsageError("the situation is empty: say what you tried and what you need decided")
    body: dict[str, Any] = {"subject": subject, "situation": text, "options": list(options),
                            "severity": severity, "context": local_context(client.root)}
    if expires_in:
        body["ttl"] = duration(expires_in)
    output.emit(client.escalate(body), _print_raised)


def local_context(root: Path) -> dict[str, Any]:
    """What only this machine knows: the branch and `git status --porcelain` (capped)."""
    lines = git_status(root)
    return {"branch": local.read_branch(root) or "", "git_status": lines[:MAX_GIT_LINES],
            "git_status_more": max(len(lines) - MAX_GIT_LINES, 0)}


def git_status(root: Path) -> list[str]:
    """`git status --porcelain` lines (leading spaces kept: they are part of the code); [] on failure.
    The beads file is left out: `wire` writes it after every bead change, it is nobody's work."""
    try:
        done = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [line for line in done.stdout.splitlines() if line.strip() and not line[3:].startswith(NOT_WORK)]


def _print_raised(e: dict[str, Any]) -> None:
    click.echo(f"escalation #{e['id']} raised ({e.get('severity')}, expires {_when(e.get('expires_at'))}): "
               f"{output.snippet(e.get('subject'), 80)}")
    click.echo("the answer will show in your banner; meanwhile work on what it does not change")


# -- list / show -----------------------------------------------------------------------------

@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), help="Only escalations in this state.")
@click.option("--mine", is_flag=True, help="Only the ones you raised.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N escalations.")
@key_option
@output.json_option
@click.pass_context
def escalations(ctx: click.Context, status: str | None, mine: bool, limit: int | None,
                key: str | None) -> None:
    """List escalations, newest first: all with the project key (or as coordinator), else your own."""
    if ctx.invoked_subcommand is not None:
        return
    output.emit(ctx.ensure_object(Client).escalations(status, mine, limit, key), _print_list)


@escalations.command()
@click.argument("ident", metavar="ID", type=int)
@key_option
@output.json_option
@pass_client
def show(client: Client, ident: int, key: str | None) -> None:
    """Show one escalation: the question, its context, the answer."""
    output.emit(client.escalation(ident, key), print_escalation)


@escalations.command()
@click.argument("url", required=False)
@click.option("--remove", is_flag=True, help="Stop posting to the webhook.")
@click.option("--test", "test", is_flag=True, help="Post a test message to it now and report the outcome.")
@key_option
@output.json_option
@pass_client
def webhook(client: Client, url: str | None, remove: bool, test: bool, key: str | None) -> None:
    """Show, set (URL) or --remove the project's webhook (Slack-compatible); needs the project key.

    `--test` posts once, synchronously: exit 0 when the receiver took it, 1 (with its error) when not.
    """
    key = need_key(key)
    try:
        answer = _set_or_show_webhook(client, url, remove, key)
        if test:
            answer = {**answer, "test": client.test_webhook(key)}
    except WireError as exc:
        raise forbidden_hint(exc) from None
    output.emit(answer, _print_webhook)
    if test and not answer["test"].get("delivered"):
        raise click.exceptions.Exit(1)


def _set_or_show_webhook(client: Client, url: str | None, remove: bool, key: str) -> Any:
    """The webhook removed (`remove`), set to `url`, or as it is when neither is asked."""
    if remove:
        return client.set_webhook(None, key)
    return client.set_webhook(url, key) if url else client.webhook(key)


def _print_webhook(answer: dict[str, Any]) -> None:
    click.echo(f"webhook: {output.clean(answer['url'])}" if answer.get("url") else "no webhook configured")
    test = answer.get("test")
    if test and test.get("delivered"):
        click.echo("test message delivered")
    elif test:
        click.echo(f"error: the test message was not delivered: {output.clean(test.get('error'))}", err=True)


# -- respond ---------------------------------------------------------------------------------

@click.command()
@click.argument("ident", metavar="ID", type=int)
@click.argument("response")
@click.option("--note", metavar="TEXT", help="Why, or what else the agent should know.")
@click.option("--by", metavar="NAME", help="Who answers (shown to the agent).")
@key_option
@output.json_option
@pass_client
def respond(client: Client, ident: int, response: str, note: str | None, by: str | None,
            key: str | None) -> None:
    """Answer escalation ID (humans: needs the project key). RESPONSE '-' reads stdin."""
    text = output.text_or_stdin(response)
    if not text.strip():
        raise click.UsageError("the response is empty")
    try:
        answer = client.respond(ident, {"response": text, "note": note, "by": by}, need_key(key))
    except WireError as exc:
        raise forbidden_hint(exc) from None
    output.emit(answer, lambda e: click.echo(
        f"answered #{e['id']}; {output.clean(e.get('from'))} sees it in its banner on its next command"))


# -- rendering -------------------------------------------------------------------------------

def _print_list(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no escalations")
        return
    table = [[f"#{e['id']}", e.get("status", ""), e.get("severity", ""), output.clean(e.get("from")),
              output.ago(e.get("created_at")), _state(e), output.snippet(e.get("subject"), 60)] for e in rows]
    click.echo(output.table(table, ("ID", "STATUS", "SEVERITY", "FROM", "RAISED", "", "SUBJECT")))


def _state(e: dict[str, Any]) -> str:
    if e.get("status") == "pending":
        return f"expires {_when(e.get('expires_at'))}"
    if e.get("status") == "answered":
        return f"answered {output.ago(e.get('answered_at'))}"
    return f"expired {output.ago(e.get('expired_at'))}"


def _when(timestamp: str | None) -> str:
    """`in 3h 59m` for a future ISO timestamp."""
    try:
        left = (datetime.fromisoformat(timestamp or "") - datetime.now(UTC)).total_seconds()
    except ValueError:
        return "?"
    minutes = max(int(left // 60), 0)
    return f"in {minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"in {minutes}m"


def print_escalation(e: dict[str, Any]) -> None:
    """The whole escalation: question, options, context, answer."""
    who = output.clean(e.get("from")) + (f" ({output.clean(e['human'])})" if e.get("human") else "")
    click.echo(f"#{e['id']} {e.get('status')} · {e.get('severity')} · from {who} · raised "
               f"{output.ago(e.get('created_at'))} · {_state(e)}")
    click.echo(f"subject: {output.clean(e.get('subject'))}\n")
    click.echo(output.clean(e.get("situation"), newlines=True).rstrip())
    for i, option in enumerate(e.get("options") or [], 1):
        click.echo(f"  {i}. {output.clean(option)}")
    _print_context(e.get("context") or {})
    if e.get("status") == "answered":
        by = f" by {output.clean(e['responder'])}" if e.get("responder") else ""
        click.echo(f"\nanswer{by}: {output.clean(e.get('response'), newlines=True)}")
        if e.get("note"):
            click.echo(f"note: {output.clean(e['note'], newlines=True)}")


def _print_context(c: dict[str, Any]) -> None:
    if not c:
        return
    git = c.get("git_status") or {}
    changes = ", ".join(f"{n} {kind}" for kind, n in (git.get("summary") or {}).items()) or "clean"
    click.echo(f"\ncontext: branch {output.clean(c.get('branch') or '-')} · {changes}")
    for claim in c.get("claims") or []:
        click.echo(f"  holds {output.clean(claim.get('bead'))}  {output.snippet(claim.get('title'), 60)}")
    for r in c.get("reservations") or []:
        click.echo(f"  reserves {output.clean(r.get('pattern'))}")
    for m in c.get("recent_messages") or []:
        click.echo(f"  {m.get('kind')} {output.clean(m.get('from') or '?')} -> "
                   f"{', '.join(output.clean(a) for a in m.get('to') or [])}: "
                   f"{output.snippet(m.get('subject') or m.get('body'), 60)}")
