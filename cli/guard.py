"""`wire guard install|uninstall|check`: a git pre-commit hook that warns (with `--strict`, refuses)
when staged files are reserved by another workspace, and a git merge driver for the beads file.

Route: `POST /v1/locks/check` (docs/API.md, "Reservations"). The hook never blocks a commit for
any other reason: a worktree not registered with `wire init`, an unreachable server or a failing
check all let the commit through (with a warning when there is something to say). An existing
pre-commit hook is kept and run first (`pre-commit.wire-chained`).

The merge driver (`wire guard merge`, registered as `merge.beads` in the repo's git config and for
`.beads/issues.jsonl` in `info/attributes`) merges the beads file bead by bead with the rules of
`wire sync` (store/merge.py), so two branches that edited different beads, or different fields of
one bead, merge without conflict markers. It needs no server.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from cli import local, output
from cli.client import Client, WireError, pass_client
from cli.locks import conflict_text

HOOK = "pre-commit"
#: Where an existing hook is moved to; ours runs it first and stops the commit if it fails.
CHAINED = "pre-commit.wire-chained"
#: Marks a hook as ours (so installing again rewrites it instead of chaining it).
MARKER = "# beadwire-guard"
#: Exit status of `wire guard check --strict` when it refuses; the hook turns it into 1.
REFUSED_EXIT = 3
#: Seconds the check waits for the server: a commit must not hang on it.
CHECK_TIMEOUT = 5.0
#: Paths per check request (the server's limit per call).
BATCH = 200
WILDCARDS = "*?["
BEADS_PATH = ".beads/issues.jsonl"
REFUSED_HINT = "ask the holder (wire mail send ALIAS ...), or commit anyway with --no-verify"
#: The merge driver's name in git config, and the attributes line that sends the beads file to it.
DRIVER = "beads"
ATTRIBUTES_LINE = f"/.beads/issues.jsonl merge={DRIVER}"

HOOK_TEXT = """#!/bin/sh
{marker}: warns{strict_note} when staged files are reserved by another workspace.
# Written by `wire guard install`; `wire guard uninstall` removes it (and restores a chained hook).
# Skip it once with `git commit --no-verify`.
hooks=$(dirname "$0")
if [ -x "$hooks/{chained}" ]; then
  "$hooks/{chained}" "$@" || exit $?
fi
wire_python={python}
if [ ! -x "$wire_python" ]; then
  echo "beadwire guard: $wire_python is gone; commit not checked (run wire guard install again)" >&2
  exit 0
fi
"$wire_python" -c 'from cli import main; main()' guard check{strict}
status=$?
if [ "$status" -eq {refused} ]; then
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "beadwire guard: the check failed (exit $status); commit not checked" >&2
fi
exit 0
"""


class CommitRefused(WireError):
    """Raised by `wire guard check --strict` when staged files are reserved by someone else."""

    exit_code = REFUSED_EXIT
    code = "reserved"


@click.group()
def guard() -> None:
    """Git pre-commit hook: warn (or refuse) when staged files are reserved by another workspace."""


@guard.command()
@click.option("--strict", is_flag=True, help="Refuse such commits (exit 1) instead of warning.")
@output.json_option
def install(strict: bool) -> None:
    """Install the hook in this repo (again: update it). An existing pre-commit hook is kept and run first."""
    hooks = hooks_dir(Path.cwd())
    hook, chained = hooks / HOOK, hooks / CHAINED
    moved = False
    if (hook.exists() or hook.is_symlink()) and MARKER not in _read(hook):
        if chained.exists() or chained.is_symlink():
            raise WireError(f"{hook} is not ours and {chained} exists already: move one of them away, "
                            "then run `wire guard install` again", code="hook_exists")
        hook.rename(chained)
        moved = True
    hooks.mkdir(parents=True, exist_ok=True)
    _write_hook(hook, strict)
    attributes = _install_driver(Path.cwd())
    result = {"hook": str(hook), "strict": strict, "chained": str(chained) if chained.exists() else None,
              "merge_driver": DRIVER, "attributes": str(attributes)}
    output.emit(result, lambda r: _print_install(r, moved))


@guard.command()
@output.json_option
def uninstall() -> None:
    """Remove the hook (restoring a hook it chained)."""
    hooks = hooks_dir(Path.cwd())
    hook, chained = hooks / HOOK, hooks / CHAINED
    if not hook.exists() or MARKER not in _read(hook):
        raise WireError(f"no beadwire guard in {hook}", code="not_installed")
    hook.unlink()
    restored = chained.exists() or chained.is_symlink()
    if restored:
        chained.rename(hook)
    _uninstall_driver(Path.cwd())
    output.emit({"removed": str(hook), "restored": restored},
                lambda r: click.echo(f"removed the guard from {r['removed']}"
                                     + (" (your previous hook is back)" if r["restored"] else "")))


@guard.command()
@click.option("--strict", is_flag=True,
              help=f"Exit {REFUSED_EXIT} (the hook: 1) when someone else holds a staged file.")
@pass_client
def check(client: Client, strict: bool) -> None:
    """What the hook runs: check the staged files against other workspaces' reservations."""
    client.auto_reserve = False  # a commit is about to change what is modified; reserve nothing here
    client.timeout = min(client.timeout, CHECK_TIMEOUT)
    if client.workspace is None:
        return  # a worktree the server does not know: nothing to check against
    try:
        others = _held_by_others(client, staged_paths(client.workspace.root))
    except WireError as exc:
        output.warn(f"beadwire guard: {exc.message}; commit not checked")
        return
    if not others:
        return
    click.echo("beadwire guard: staged files are reserved by other workspaces:", err=True)
    for holder in others:
        click.echo(f"  {conflict_text(holder)}", err=True)
    if strict:
        names = sorted({output.clean(h.get("alias")) for h in others})
        raise CommitRefused(f"commit refused: staged files are reserved by {', '.join(names)}",
                            hint=REFUSED_HINT)
    click.echo("beadwire guard: committing anyway (the guard only warns; --strict refuses)", err=True)


@guard.command("merge", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name", required=False)
def merge_driver(base: Path, ours: Path, theirs: Path, name: str | None) -> None:
    """What git runs to merge the beads file (%O %A %B %P): bead by bead, the result written to OURS."""
    from store import merge  # noqa: PLC0415 - loads hashlib: not for each commit's check

    texts = [p.read_text(encoding="utf-8") if p.exists() else "" for p in (base, ours, theirs)]
    try:
        (b, _), (o, o_lines), (t, t_lines) = (merge.read_records(text) for text in texts)
    except ValueError as exc:
        output.warn(f"beads merge of {name or ours}: {exc}; merging it as text instead")
        raise SystemExit(_text_merge(base, ours, theirs)) from None
    merged = merge.merge_beads(b if texts[0].strip() else None, o, t, prefer=merge.OURS)
    _write_result(ours, merge.render(merged.order, merged.records, (o, o_lines), (t, t_lines)))
    for c in merged.conflicts:
        click.echo(output.clean(f"beads merge: {c.id} {c.field}: {c.reason}; kept {c.kept}'s "
                                f"{output.snippet(c.value, 40)}, the other side had "
                                f"{output.snippet(c.lost, 40)}"),
                   err=True)


def _text_merge(base: Path, ours: Path, theirs: Path) -> int:
    """git's own line merge, conflict markers and all (for a file we cannot read as beads)."""
    done = subprocess.run(["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs", str(ours),
                           str(base), str(theirs)], check=False)
    return 1 if done.returncode else 0


def _write_result(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.wire-merge")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _install_driver(cwd: Path) -> Path:
    """Register the beads merge driver in the repo's config (shared by its worktrees) and route the
    beads file to it in `info/attributes` (local: nothing to commit). Returns the attributes file."""
    command = (f"{shlex.quote(sys.executable)} -c 'from cli import main; main()' guard merge %O %A %B %P")
    local.git("config", "--local", f"merge.{DRIVER}.name", "beadwire: bead-by-bead merge of the beads file",
              cwd=cwd)
    local.git("config", "--local", f"merge.{DRIVER}.driver", command, cwd=cwd)
    attributes = _attributes_file(cwd)
    text = _read(attributes)
    if ATTRIBUTES_LINE not in text.splitlines():
        attributes.parent.mkdir(parents=True, exist_ok=True)
        separator = "\n" if text and not text.endswith("\n") else ""
        attributes.write_text(text + separator + ATTRIBUTES_LINE + "\n", encoding="utf-8")
    return attributes


def _uninstall_driver(cwd: Path) -> None:
    for key in (f"merge.{DRIVER}.name", f"merge.{DRIVER}.driver"):
        try:
            local.git("config", "--local", "--unset", key, cwd=cwd)
        except WireError:
            pass  # not set: nothing to remove
    attributes = _attributes_file(cwd)
    text = _read(attributes)
    if ATTRIBUTES_LINE in text.splitlines():
        kept = [line for line in text.splitlines() if line != ATTRIBUTES_LINE]
        attributes.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _attributes_file(cwd: Path) -> Path:
    return (cwd / local.git("rev-parse", "--git-path", "info/attributes", cwd=cwd)).resolve()


def _held_by_others(client: Client, paths: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for i in range(0, len(paths), BATCH):
        answer = client.check_locks([escape(p) for p in paths[i:i + BATCH]]) or {}
        found += [h for h in answer.get("holders") or [] if isinstance(h, dict) and not h.get("mine")]
    return found


# -- git ---------------------------------------------------------------------------------------

def hooks_dir(cwd: Path) -> Path:
    """The repo's hooks directory (shared by its worktrees; honours `core.hooksPath`).

    Raises:
        WireError: not inside a git repository.
    """
    try:
        found = local.git("rev-parse", "--git-path", "hooks", cwd=cwd)
    except WireError as exc:
        raise WireError("not a git repository: run `wire guard install` inside your worktree",
                        code="not_a_repo") from exc
    return (cwd / found).resolve()


def staged_paths(root: Path) -> list[str]:
    """The paths a commit would change, relative to the root (a rename: both names; a merge: only
    the files whose staged content differs from every parent, i.e. what the merger resolved or edited).

    Raises:
        WireError: git failed.
    """
    paths = set(_diff_names(root, []))
    for head in _merge_heads(root):
        paths &= set(_diff_names(root, [head]))
    return sorted(p for p in paths if not p.startswith(local.NOT_WORK))  # the beads file: see local.py


def _diff_names(root: Path, against: list[str]) -> list[str]:
    # --no-renames: a rename is its old name (deleted) and its new one (added)
    raw = local.git("diff", "--cached", "--name-only", "-z", "--no-renames", *against, "--", cwd=root)
    return [p for p in raw.split("\0") if p]


def _merge_heads(root: Path) -> list[str]:
    """The commits being merged in (several for an octopus merge), or none."""
    path = Path(local.git("rev-parse", "--git-path", "MERGE_HEAD", cwd=root))
    try:
        return (root / path).read_text(encoding="utf-8").split()
    except OSError:
        return []


def escape(path: str) -> str:
    """A pattern matching exactly `path` (wildcard characters put in classes)."""
    return "".join(f"[{c}]" if c in WILDCARDS else c for c in path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _write_hook(hook: Path, strict: bool) -> None:
    text = HOOK_TEXT.format(marker=MARKER, strict_note=" and refuses" if strict else "", chained=CHAINED,
                            python=shlex.quote(sys.executable), strict=" --strict" if strict else "",
                            refused=REFUSED_EXIT)
    tmp = hook.with_name(f".{HOOK}.wire-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, hook)


def _print_install(result: dict[str, Any], moved: bool) -> None:
    mode = "refuses" if result["strict"] else "warns about"
    click.echo(f"installed the beadwire guard in {result['hook']}: it {mode} commits of files reserved "
               "by other workspaces")
    if moved:
        click.echo(f"  your existing hook now lives in {result['chained']} and runs first")
    elif result["chained"]:
        click.echo(f"  it runs {result['chained']} first")
    click.echo(f"and the beads merge driver: git merges {BEADS_PATH} bead by bead (routed in "
               f"{result['attributes']})")
