"""`wire sync`: upload this repo's beads file so the server sees the same beads as the repo.

The repo is the ground truth for its beads; the server aggregates them (`POST /v1/sync`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli import output
from cli.client import Client, WireError, pass_client

#: The beads file, relative to the worktree root.
BEADS_FILE = Path(".beads") / "issues.jsonl"
COUNTS = ("created", "updated", "unchanged", "tombstoned")


@click.command()
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help=f"Beads file to upload (default: <worktree>/{BEADS_FILE}).")
@click.option("--incremental", is_flag=True,
              help="Only add and update; beads missing from the file are left alone (default: full).")
@output.json_option
@pass_client
def sync(client: Client, path: Path | None, incremental: bool) -> None:
    """Upload the repo's beads (.beads/issues.jsonl) to the server."""
    path = path or client.root / BEADS_FILE
    answer = client.sync(_read(path), "incremental" if incremental else "full")
    output.emit(answer, lambda a: _print_result(a, path))


def _read(path: Path) -> str:
    """The beads file's text.  Raises: WireError: missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WireError(f"no beads file at {path}", code="no_beads_file",
                        hint="run `wire sync` in a repo that uses beads, or pass --file PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WireError(f"cannot read {path}: {exc}", code="unreadable") from exc


def _print_result(answer: dict[str, Any], path: Path) -> None:
    counts = ", ".join(f"{answer.get(name, 0)} {name}" for name in COUNTS)
    click.echo(f"synced {path}: {counts} ({answer.get('total', 0)} total)")
    conflicts = answer.get("conflicts") or []
    if conflicts:
        click.echo(f"{len(conflicts)} conflict{'s' if len(conflicts) != 1 else ''}:")
    for conflict in conflicts:
        click.echo(f"  {conflict.get('id', '?')}: {conflict.get('reason', '')}")
