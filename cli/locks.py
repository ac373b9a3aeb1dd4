"""Reservation commands: `wire lock`, `wire unlock`, `wire locks [--mine | --check PATH...]`.

Routes: `POST|DELETE|GET /v1/locks`, `GET|POST /v1/locks/check` (docs/API.md, "Reservations").
Reservations are advisory: a conflicting one is granted, and the holder is printed as a warning.
PATHs are taken relative to the current directory, like any file argument, and sent relative to
the worktree root; a glob without `/` (`'*.sql'`) matches at any depth below the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from cli import output
from cli.client import Client, pass_client

LIST_HEADERS = ("PATTERN", "HOLDER", "REASON", "BEAD", "LEFT")
WILDCARDS = "*?["


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH_OR_GLOB...")
@click.option("--ttl", type=click.IntRange(min=1, max=24 * 3600), metavar="SECONDS",
              help="Lease in seconds (default 300); renew by reserving again.")
@click.option("--bead", metavar="ID", help="The bead this work is for.")
@click.option("--reason", metavar="R", help="What you are doing (shown to whoever overlaps).")
@output.json_option
@pass_client
def lock(client: Client, paths: tuple[str, ...], ttl: int | None, bead: str | None,
         reason: str | None) -> None:
    """Reserve files or globs (advisory: granted even when someone else holds an overlap, with a warning)."""
    answer = client.lock(repo_patterns(client, paths), ttl=ttl, bead=bead, reason=reason)
    output.emit(answer, _print_lock)


@click.command()
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--all", "all_", is_flag=True, help="Release every reservation you hold in this repo.")
@output.json_option
@pass_client
def unlock(client: Client, paths: tuple[str, ...], all_: bool) -> None:
    """Release your reservations of PATHs (as you reserved them), or all of them with --all."""
    if bool(paths) == all_:
        raise click.UsageError("give PATHs to release, or --all")
    answer = client.unlock(None if all_ else repo_patterns(client, paths))
    output.emit(answer, _print_unlock)


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH...]")
@click.option("--mine", is_flag=True, help="Only your reservations.")
@click.option("--check", is_flag=True, help="Only say who holds what overlaps PATHs (reserves nothing).")
@output.json_option
@pass_client
def locks(client: Client, paths: tuple[str, ...], mine: bool, check: bool) -> None:
    """List the live reservations of this repo; with --check PATH..., who holds what overlaps PATHs."""
    if check != bool(paths):
        raise click.UsageError("PATHs go with --check (wire locks --check PATH...)")
    if check and mine:
        raise click.UsageError("--check and --mine do not go together")
    if check:
        output.emit(client.check_locks(repo_patterns(client, paths)), _print_check)
    else:
        output.emit(client.locks(mine=mine), _print_locks)


# -- paths -------------------------------------------------------------------------------------

def repo_patterns(client: Client, paths: tuple[str, ...]) -> list[str]:
    """Each PATH_OR_GLOB as a pattern relative to the worktree root."""
    root, here = client.root.resolve(), Path.cwd().resolve()
    return [repo_pattern(p, root, here) for p in paths]


def repo_pattern(arg: str, root: Path, cwd: Path) -> str:
    """`arg`, typed in `cwd`, relative to the worktree `root`; a directory on disk gets a trailing `/`.

    Raises:
        click.BadParameter: the path is empty or lies outside the worktree.
    """
    text = arg.replace(os.sep, "/").strip()
    if not text:
        raise click.BadParameter("a path is empty")
    glob = any(c in WILDCARDS for c in text)
    if glob and "/" not in text.rstrip("/"):
        text = "**/" + text  # like .gitignore: any depth below here
    directory = text.endswith("/") or (not glob and (cwd / text).is_dir())
    relative = os.path.relpath(os.path.normpath(os.path.join(cwd, text)), root).replace(os.sep, "/")
    if relative == ".." or relative.startswith("../"):
        raise click.BadParameter(f"{arg} is outside this worktree ({root})")
    relative = "" if relative == "." else relative
    return f"{relative}/" if directory else relative


# -- printing ----------------------------------------------------------------------------------

def left(seconds: Any) -> str:
    """`4m05s`, `45s`, `2h10m`."""
    if not isinstance(seconds, int | float):
        return "?"
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def conflict_text(conflict: dict[str, Any]) -> str:
    """`src/a.py is reserved by bob as src/** (refactor cart; 4m05s left)`."""
    path, pattern = output.clean(conflict.get("path")), output.clean(conflict.get("pattern"))
    why = output.snippet(conflict.get("reason") or "no reason given", 60)
    bead = f", {output.clean(conflict['bead'])}" if conflict.get("bead") else ""
    held_as = f" as {pattern}" if pattern and pattern != path else ""
    return (f"{path} is reserved by {output.clean(conflict.get('alias') or '?')}{held_as} "
            f"({why}{bead}; {left(conflict.get('seconds_left'))} left)")


def _print_lock(answer: dict[str, Any]) -> None:
    granted = answer.get("granted") or []
    patterns = ", ".join(output.clean(r.get("pattern")) for r in granted)
    seconds = granted[0].get("seconds_left") if granted else None
    click.echo(f"reserved {patterns} for {left(seconds)}")
    for conflict in answer.get("conflicts") or []:  # granted all the same: reservations are advisory
        output.warn(conflict_text(conflict))


def _print_unlock(answer: dict[str, Any]) -> None:
    released = [output.clean(r.get("pattern")) for r in answer.get("released") or []]
    click.echo(f"released {', '.join(released)}" if released else "released nothing")
    for pattern in answer.get("not_held") or []:
        click.echo(f"not held: {output.clean(pattern)}")


def _print_locks(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no reservations in this repo")
        return
    click.echo(output.table([_row(r) for r in rows], LIST_HEADERS))


def _row(r: dict[str, Any]) -> list[str]:
    holder = f"{output.clean(r.get('alias'))}{' (you)' if r.get('mine') else ''}"
    return [output.clean(r.get("pattern")), holder, output.snippet(r.get("reason") or "-", 40),
            output.clean(r.get("bead") or "-"), left(r.get("seconds_left"))]


def _print_check(answer: dict[str, Any]) -> None:
    holders = answer.get("holders") or []
    if not holders:
        click.echo("nobody holds these paths")
    for h in holders:
        click.echo(conflict_text({**h, "alias": "you"} if h.get("mine") else h))
