"""Bead commands: create, ready, update, comment, link; and the printers of show, list, mine, deps,
history, search, close, reopen, claim, release, subscribe, unsubscribe (commands generated from their
rows in the operations table, cli/ops_work.py).

Routes: `/v1/beads...`, `/v1/ready`, `/v1/mine`, `/v1/search` (docs/API.md). A bead ref is an id
(`bd-a3f8`) or `<repo>:<id>`; the server resolves it.
"""

from __future__ import annotations

import re
from typing import Any

import click

from cli import output
from cli.client import Client, pass_client

#: `wire deps` sections: answer key -> heading.
DEPS_SECTIONS = (("active_blockers", "blocked by"), ("resolved_blockers", "resolved blockers"),
                 ("blocks", "blocks"), ("parent", "parent"), ("children", "children"))
#: `wire link` options -> dependency type (`ID` depends on `OTHER`).
LINK_TYPES = {"blocked_by": "blocks", "parent": "parent-child"}

PRIORITY_HELP = "0-4, P0-P4, or critical/high/medium/low/backlog."
STDIN_HELP = "'-' reads it from stdin."


def _title(value: str | None, param: str) -> str | None:
    """The title, unless it is blank (a usage error: exit 2, before anything is sent)."""
    if value is not None and not value.strip():
        raise click.BadParameter("the title must not be blank", param_hint=param)
    return value


# -- create ----------------------------------------------------------------------------------

@click.command()
@click.argument("title")
@click.option("-t", "--type", "issue_type", metavar="TYPE", help="task, bug, feature, epic, chore, ...")
@click.option("-p", "--priority", metavar="P", help=PRIORITY_HELP)
@click.option("-d", "--description", metavar="TEXT", help=f"Description; {STDIN_HELP}")
@click.option("-l", "--label", "labels", multiple=True, metavar="LABEL", help="Label (repeatable).")
@click.option("--parent", metavar="ID", help="Epic or parent bead.")
@click.option("--blocked-by", "blocked_by", multiple=True, metavar="ID", help="Blocker (repeatable).")
@click.option("--role", metavar="ROLE", callback=lambda c, p, v: _role(v),
              help="The role whose work it is (stored as the label role:ROLE).")
@output.json_option
@pass_client
def create(client: Client, title: str, issue_type: str | None, priority: str | None, description: str | None,
           labels: tuple[str, ...], parent: str | None, blocked_by: tuple[str, ...],
           role: str | None) -> None:
    """Create a bead."""
    # the role is a label, so it works offline too (the bead then waits in the beads file)
    tags = [x for x in labels if not (role and x.startswith(ROLE_PREFIX))]
    tags += [ROLE_PREFIX + role] if role else []
    bead = client.create_bead({"title": _title(title, "TITLE"), "issue_type": issue_type,
                               "priority": priority, "description": output.text_or_stdin(description),
                               "labels": tags, "parent": parent, "blocked_by": list(blocked_by)})
    output.emit(bead, _print_created)


# -- ready -----------------------------------------------------------------------------------

@click.command()
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N beads.")
@click.option("--explain", metavar="ID", help="Say why this bead is or is not ready.")
@click.option("--role", metavar="ROLE", callback=lambda c, p, v: _role(v), help="Only beads of this role.")
@output.json_option
@pass_client
def ready(client: Client, limit: int | None, explain: str | None, role: str | None) -> None:
    """List beads ready to work on: your role's first, most urgent first; others' marked [role:R]."""
    if explain:
        output.emit(client.explain(explain), _print_explain)
        return
    output.emit(client.ready(limit, role), lambda b: _print_ready(b, mine=_my_role(client), role=role))


# -- update ----------------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="ID")
@click.option("--status", metavar="S", help="New status (in_progress claims, closed closes, open releases).")
@click.option("--title", metavar="T", help="New title.")
@click.option("-p", "--priority", metavar="P", help=PRIORITY_HELP)
@click.option("-d", "--description", metavar="TEXT", help=f"New description; {STDIN_HELP}")
@click.option("--add-label", "add_labels", multiple=True, metavar="L", help="Add a label (repeatable).")
@click.option("--remove-label", "remove_labels", multiple=True, metavar="L",
              help="Remove a label (repeatable).")
@click.option("--assignee", metavar="ALIAS", help="New assignee.")
@click.option("--role", metavar="ROLE", callback=lambda c, p, v: _role(v, clear=True),
              help="The role whose work it is (replaces its role:... label; '' removes it).")
@click.option("--jump-in", "jump_in", metavar="REASON",
              help="With --status in_progress: take it from its holder.")
@output.json_option
@pass_client
def update(client: Client, ref: str, status: str | None, title: str | None, priority: str | None,
           description: str | None, add_labels: tuple[str, ...], remove_labels: tuple[str, ...],
           assignee: str | None, role: str | None, jump_in: str | None) -> None:
    """Change a bead's fields (status in_progress is the same as `wire claim`)."""
    body = {"status": status, "title": _title(title, "--title"), "priority": priority,
            "description": output.text_or_stdin(description),
            "add_labels": list(add_labels), "remove_labels": list(remove_labels), "assignee": assignee,
            "role": role, "jump_in": jump_in}
    if all(v is None or v == [] for v in body.values()):
        raise click.UsageError("nothing to update: give at least one option (see `wire update --help`)")
    output.emit(client.update_bead(ref, body), _print_updated)


def _print_updated(answer: dict[str, Any]) -> None:
    if "unblocked" in answer:  # --status closed answers like /close
        _print_closed(answer)
    else:
        click.echo(f"updated {_summary(answer)}")


# -- comment ---------------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="ID")
@click.argument("text")
@output.json_option
@pass_client
def comment(client: Client, ref: str, text: str) -> None:
    """Add a comment to a bead ('-' reads the text from stdin)."""
    output.emit(client.comment(ref, output.text_or_stdin(text) or ""), lambda c: _print_commented(c, ref))


# -- dependencies ----------------------------------------------------------------------------

@click.command()
@click.argument("ref", metavar="ID")
@click.option("--blocked-by", "blocked_by", metavar="OTHER", help="ID cannot start until OTHER is closed.")
@click.option("--parent", metavar="OTHER", help="ID is a child of OTHER (an epic).")
@output.json_option
@pass_client
def link(client: Client, ref: str, blocked_by: str | None, parent: str | None) -> None:
    """Add a dependency: ID --blocked-by OTHER, or ID --parent OTHER."""
    if bool(blocked_by) == bool(parent):
        raise click.UsageError("give exactly one of --blocked-by OTHER or --parent OTHER")
    kind, target = ("blocked_by", blocked_by) if blocked_by else ("parent", parent)
    output.emit(client.add_dep(ref, str(target), LINK_TYPES[kind]), _print_link)


def _print_link(dep: dict[str, Any]) -> None:
    relation = "a child of" if dep.get("type") == "parent-child" else "blocked by"
    click.echo(f"{dep.get('issue_id')} is now {relation} {dep.get('depends_on_id')}")


def _print_deps(answer: dict[str, Any]) -> None:
    printed = False
    for key, heading in DEPS_SECTIONS:
        items = answer.get(key)
        items = items if isinstance(items, list) else [items] if items else []
        if items:
            click.echo(f"{heading}:")
            for item in items:
                click.echo(f"  {_brief(item)}")
            printed = True
    if not printed:
        click.echo("no dependencies")


# -- history ---------------------------------------------------------------------------------

#: Data keys a history line leaves out: the bead is the one asked about; who and when have columns.
HISTORY_SAID = ("bead", "alias", "from", "ts")
#: Characters of an event's data a history line shows.
HISTORY_DATA = 80


def _print_history(changes: list[dict[str, Any]]) -> None:
    """One line per change, newest first: `2026-12-04 15:02  ana  claim.created  title=Fix it`."""
    if not changes:
        click.echo("no history")
        return
    rows = [(output.clean(c.get("at") or "-")[:16].replace("T", " "), output.clean(c.get("who")) or "-",
             output.clean(c.get("kind")), _change_data(c.get("data"))) for c in changes]
    click.echo(output.table(rows))


def _change_data(data: Any) -> str:
    """An event's data as short `key=value` pairs (lists and objects flattened), cut to one line."""
    if not isinstance(data, dict):
        return ""
    pairs = [f"{key}={_flat(value)}" for key, value in data.items()
             if key not in HISTORY_SAID and value not in (None, "", [], {})]
    return output.snippet(" ".join(pairs), HISTORY_DATA)  # agent-written text: cleaned


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(_flat, value))
    if isinstance(value, dict):
        return ",".join(f"{k}:{_flat(v)}" for k, v in value.items())
    return str(value)


# -- rendering -------------------------------------------------------------------------------

def _summary(bead: dict[str, Any]) -> str:
    """`bd-12: title`."""
    ident, title = output.clean(bead.get("id", "?")), output.clean(bead.get("title"))
    return f"{ident}: {title}" if title else ident


def _brief(item: Any) -> str:
    """One line for a bead given as an object or just an id."""
    if not isinstance(item, dict):
        return output.clean(item)
    return "  ".join(output.clean(v) for v in (item.get("id"), item.get("status"), item.get("title")) if v)


def _holder(bead: dict[str, Any]) -> str:
    claim = bead.get("claim")
    if claim:
        return f"@{claim.get('alias', '?')}{' (stale)' if claim.get('stale') else ''}"
    a = bead.get("assignment")
    if isinstance(a, dict) and a.get("by"):  # a binding assignment (wire assign): say who made it
        return f"@{a.get('to', '?')} (assigned by {a['by']})"
    return f"@{bead['assignee']}" if bead.get("assignee") else ""


def _bead_row(bead: dict[str, Any], qualify: bool, mine: str | None = None) -> list[str]:
    """id, priority, status, type, holder, title; ids carry their repo when the list spans repos; with
    `mine` (my role), the title of another role's bead is marked `[role:R]`."""
    ident = bead.get("id", "?")
    if qualify and bead.get("repo"):
        ident = f"{bead['repo'].rstrip('/').rsplit('/', 1)[-1]}:{ident}"
    title, role = bead.get("title", ""), role_of(bead.get("labels"))
    if mine is not None and role is not None and role.casefold() != mine.casefold():
        title = f"[{ROLE_PREFIX}{role}] {title}"
    row = [ident, output.priority(bead.get("priority")), bead.get("status") or "-",
           bead.get("issue_type") or "-", _holder(bead), title]
    return [output.clean(cell) for cell in row]  # synced and agent-written text is untrusted


# `wire mcp` renders its answers with these same functions (cli/mcp_server.py): keep them printing only.

def _print_mine(beads: list[dict[str, Any]]) -> None:
    _print_beads(beads, "you hold no beads: find work with `wire ready`")


def _print_reopened(bead: dict[str, Any]) -> None:
    click.echo(f"reopened {_summary(bead)}")


def _print_subscribed(answer: Any, ref: str) -> None:
    click.echo(f"subscribed to {ref}")


def _print_unsubscribed(answer: Any, ref: str) -> None:
    click.echo(f"unsubscribed from {ref}")


def _print_created(bead: dict[str, Any]) -> None:
    click.echo(f"created {_summary(bead)}")


def _print_released(answer: dict[str, Any], ref: str) -> None:
    click.echo(f"released {_summary(answer.get('bead') or {'id': ref})}")


def _print_commented(answer: Any, ref: str) -> None:
    click.echo(f"commented on {ref}")


def _my_role(client: Client) -> str | None:
    return client.workspace.data.get("role") if client.workspace is not None else None


def _print_ready(beads: list[dict[str, Any]], mine: str | None = None, role: str | None = None) -> None:
    """Ready beads, those of another role than `mine` marked; `role` is the --role filter asked for."""
    empty = f"nothing ready for role {role}" if role else \
        "nothing ready: every open bead is claimed, blocked or deferred"
    _print_beads(beads, empty, mine)


def _print_listed(beads: list[dict[str, Any]]) -> None:
    _print_beads(beads, "no beads")


def _print_found(beads: list[dict[str, Any]]) -> None:
    _print_beads(beads, "no matches")


def _print_beads(beads: list[dict[str, Any]], empty: str, mine: str | None = None) -> None:
    if not beads:
        click.echo(empty)
        return
    qualify = len({b.get("repo") for b in beads}) > 1
    click.echo(output.table([_bead_row(b, qualify, mine) for b in beads]))


#: The label prefix that gives a bead its role (as the server reads it: store/readiness.py).
ROLE_PREFIX = "role:"
_ROLE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def role_of(labels: Any) -> str | None:
    """A bead's role from its labels (`role:frontend` -> `frontend`), or None."""
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, str) and label.startswith(ROLE_PREFIX) and label[len(ROLE_PREFIX):]:
            return label[len(ROLE_PREFIX):]
    return None


def _role(value: str | None, clear: bool = False) -> str | None:
    """A `--role` value, checked here so a bad one is a usage error (exit 2) before any call."""
    if value is None or (clear and value == ""):
        return value
    if not _ROLE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a role name (letters, digits, '-' and '_')")
    return value


def _print_bead(bead: dict[str, Any]) -> None:
    click.echo(output.clean(f"{bead.get('id', '?')}  {bead.get('title', '')}"))
    facts = [bead.get("status"), output.priority(bead.get("priority")), bead.get("issue_type"),
             bead.get("repo")]
    click.echo(output.clean("  " + " · ".join(str(f) for f in facts if f)))
    for line in _bead_facts(bead):
        click.echo(f"  {output.clean(line)}")
    if bead.get("description"):
        click.echo("\n" + output.clean(bead["description"], newlines=True).rstrip())
    _print_commits(bead)
    _print_comments(bead.get("comments") or [])


def _print_commits(bead: dict[str, Any]) -> None:
    """The commits recorded on the bead, then those of its holder's branch not recorded yet."""
    recorded = bead.get("commits") or []
    live = bead.get("git") or {}
    shown = {c.get("sha") for c in recorded}
    pending = [c for c in live.get("commits") or [] if c.get("sha") not in shown]
    if not recorded and not pending:
        return
    click.echo("\ncommits:")
    for c in recorded:
        click.echo(output.clean(f"  {c.get('sha', '?')}  {c.get('subject', '')}  ({c.get('branch') or '-'})"))
    for c in pending:
        click.echo(output.clean(f"  {c.get('sha', '?')}  {c.get('subject', '')}  "
                                f"({live.get('branch') or '-'}, open)"))


def _bead_facts(bead: dict[str, Any]) -> list[str]:
    """Claim, labels, dependencies and close reason, one line each."""
    lines = [_claim_line(bead["claim"])] if bead.get("claim") else []
    if bead.get("claim") and bead.get("git"):
        lines.append("work: " + output.git_text(bead["git"]))
    if not bead.get("claim") and bead.get("assignee"):
        lines.append(f"assignee: {bead['assignee']}")
    if bead.get("labels"):
        lines.append("labels: " + ", ".join(map(str, bead["labels"])))
    depends = [f"{d.get('depends_on_id')} ({d.get('type')})" for d in bead.get("dependencies") or []]
    if depends:
        lines.append("depends on: " + ", ".join(depends))
    if bead.get("close_reason"):
        lines.append(f"closed: {bead['close_reason']}")
    return lines


def _claim_line(claim: dict[str, Any]) -> str:
    human = f" ({claim['human']})" if claim.get("human") else ""
    stale = " [stale: holder offline]" if claim.get("stale") else ""
    return f"claimed by {claim.get('alias', '?')}{human} {output.ago(claim.get('since'))}{stale}"


def _print_comments(comments: list[dict[str, Any]]) -> None:
    if comments:
        click.echo("\ncomments:")
    for c in comments:
        text = output.clean(c.get("text", ""), newlines=True)
        click.echo(f"  [{output.clean(c.get('author', '?'))}, {output.ago(c.get('created_at'))}] {text}")


def _print_claim(answer: dict[str, Any]) -> None:
    bead = answer.get("bead") or {}
    if answer.get("already_held"):
        click.echo(f"you already hold {_summary(bead)}")
        return
    click.echo(f"claimed {_summary(bead)}")
    previous = answer.get("previous")
    if previous:
        click.echo(f"  taken over from {previous.get('alias', '?')}; they have been told")


def _print_closed(answer: dict[str, Any]) -> None:
    click.echo(f"closed {_summary(answer.get('bead') or {})}")
    commits = answer.get("commits") or []
    if commits:
        click.echo(f"recorded {len(commits)} commit{'s' if len(commits) != 1 else ''}: "
                   + ", ".join(c.get("sha", "?") for c in commits))
    unblocked = answer.get("unblocked") or []
    if unblocked:
        click.echo("unblocked (ready now):")
        for line in output.table([_bead_row(b, False) for b in unblocked]).splitlines():
            click.echo(f"  {line}")


def _print_explain(answer: dict[str, Any]) -> None:
    if answer.get("ready"):
        click.echo(f"{answer.get('id')} is ready")
        return
    click.echo(f"{answer.get('id')} is not ready:")
    for reason in answer.get("reasons") or []:
        click.echo(f"  - {reason}")
