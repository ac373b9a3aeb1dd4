"""`wire sync`: keep the repo's beads file and the server in step, both ways.

Routes: `POST /v1/sync` (with the worktree's base), `GET /v1/sync/history`, `POST /v1/sync/<id>/undo`
(docs/API.md, "Sync"). The file side (base, atomic writes, lock) is cli/beadsfile.py; the merge
rules are store/merge.py, shared with the git merge driver (`wire guard install`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from cli import beadsfile, offline, output
from cli.client import Client, Conflict, pass_client

COUNTS = ("created", "updated", "tombstoned", "pulled", "unchanged")
#: Lines of a long list (conflicts, beads to delete) printed before "and N more".
DEFAULT_SHOWN = 10


@click.command()
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help=f"Beads file to sync (default: <worktree>/{beadsfile.BEADS_FILE}; another file has no "
                   "base, "
                   "so nothing is deleted).")
@click.option("--incremental", is_flag=True,
              help="Never delete: beads missing from the file come back into it.")
@click.option("--dry-run", is_flag=True, help="Print what would change, both ways, and change nothing.")
@click.option("--allow-delete", is_flag=True,
              help="Let the sync tombstone more than 20 beads or 10% of the live ones, or claimed beads.")
@click.option("--history", is_flag=True, help="List this repo's recent syncs.")
@click.option("--undo", "undo", type=click.IntRange(min=1), metavar="SYNC_ID",
              help="Put back every bead that sync changed, as a new change.")
@output.json_option
@pass_client
def sync(client: Client, path: Path | None, incremental: bool, dry_run: bool, allow_delete: bool,
         history: bool, undo: int | None) -> None:
    """Sync the repo's beads (.beads/issues.jsonl) with the server, both ways (exit 3: refused deletions)."""
    if history:
        output.emit(client.sync_history(), _print_history)
        return
    if undo is not None:
        output.emit(_undo(client, undo), _print_undo)
        return
    try:
        answer = beadsfile.sync(client, path, "incremental" if incremental else "full", dry_run, allow_delete)
    except Conflict as exc:
        if exc.code == "sync_deletes" and not output.is_json():
            _listed("would tombstone", exc.details.get("would_delete") or [], str, err=True)
        raise
    output.emit(answer, _print_result)


def _undo(client: Client, run_id: int) -> dict[str, Any]:
    client.catch_up()
    answer = client.undo_sync(run_id)
    if answer.get("records") and client.workspace is not None:
        with offline.locked(client.workspace.root):
            beadsfile.store_records(client.workspace.root, answer["records"])
    return answer


# -- rendering -------------------------------------------------------------------------------

def _listed(heading: str, items: Sequence[Any], line: Callable[[Any], str], err: bool = False,
            shown: int = DEFAULT_SHOWN) -> None:
    """A heading with the count, the first `shown` items, then "and N more (--json for all)"."""
    if not items:
        return
    click.echo(f"{len(items)} {heading}:", err=err)
    for item in items[:shown]:
        click.echo(f"  {output.clean(line(item))}", err=err)
    if len(items) > shown:
        click.echo(f"  and {len(items) - shown} more (--json for all)", err=err)


def _conflict_line(c: dict[str, Any]) -> str:
    text = f"{c.get('id', '?')}: {c.get('reason', '')}"
    if c.get("field") not in (None, "record") and c.get("lost") is not None:
        text += f" (kept the {c.get('kept')}'s {output.snippet(c.get('value'), 40)!s}; " \
                f"lost {output.snippet(c.get('lost'), 40)!s}, kept in the bead's history)"
    return text


def _print_result(a: dict[str, Any]) -> None:
    counts = ", ".join(f"{a.get(name, 0)} {name}" for name in COUNTS)
    if a.get("dry_run"):
        click.echo(f"dry run, nothing changed: {a.get('file')} would sync as {counts} "
                   f"({a.get('total', 0)} in the file)")
    else:
        click.echo(f"synced {a.get('file')} (sync #{a.get('sync')}): {counts} ({a.get('total', 0)} in the "
                   "file)")
    if a.get("base_note"):
        click.echo(f"note: {a['base_note']}: nothing was deleted")
    changes = a.get("changes") or {}
    if a.get("dry_run"):
        for key, heading in (("created", "to create on the server"), ("updated", "to update on the server"),
                             ("tombstoned", "to tombstone on the server"),
                             ("pulled", "to write into the file")):
            _listed(heading, changes.get(key) or [], str)
    else:
        _listed("tombstoned", changes.get("tombstoned") or [], str)
    _listed("conflicts", a.get("conflicts") or [], _conflict_line)
    if a.get("needs_allow_delete"):
        click.echo("a real sync would change nothing without --allow-delete (too many deletions, or claimed "
                   "beads)")
    if a.get("mass") and not a.get("dry_run"):
        click.echo(f"note: a mass change; `wire sync --undo {a.get('sync')}` puts it back")


def _print_history(runs: list[dict[str, Any]]) -> None:
    if not runs:
        click.echo("no syncs of this repo yet")
        return
    rows = []
    for run in runs:
        what = "undo of #" + str(run.get("undo_of")) if run.get("kind") == "undo" else "sync"
        counts = ", ".join(f"{v} {k}" for k, v in (run.get("counts") or {}).items() if v)
        undone = f"undone by #{run['undone_by']}" if run.get("undone_by") else ""
        rows.append([f"#{run.get('sync')}", what, output.clean(run.get("alias")), output.ago(run.get("at")),
                     counts or "no change", undone])
    click.echo(output.table(rows))


def _print_undo(a: dict[str, Any]) -> None:
    click.echo(f"undid sync #{a.get('undo_of')} as sync #{a.get('sync')}: {a.get('restored', 0)} beads put "
               "back")
    _listed("left as they are", a.get("conflicts") or [], _conflict_line)
