"""ruff and mypy, run as tests: CI runs only `pytest`, so a lint finding or a type error fails the build
like any broken behaviour. The rules and the mypy settings live in pyproject.toml.

mypy takes 20-40 s here from a cold cache, so its tests are `slow`: the fast loop (`-m "not slow"`)
runs ruff only, the full suite runs both.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What ruff lints; mypy checks the production packages (`files` in pyproject's [tool.mypy]).
LINTED = ("store", "web", "actors", "cli", "tests", "bench")

#: TEMPORARY (issue 16, item 9): files that are not yet clean because other branches were rewriting
#: them when the checks arrived. Both tests skip their findings; the lead empties this list after the
#: merge, and nothing is ever added to it. See each file's findings with
#: `python3 -m ruff check FILE` and `python3 -m mypy` (the whole project: mypy needs every module).
PENDING: tuple[str, ...] = (
    "tests/conftest.py", "tests/servers.py",
)

#: `path:line: error: ...` (mypy; a file-wide error has no line) / `path:line:col: CODE message` (ruff)
_LOCATION = re.compile(r"^([^\s:]+\.(?:pyi?|toml)):")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)


def _findings(output: str) -> dict[str, list[str]]:
    """Finding lines grouped by file (notes and summaries dropped)."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = _LOCATION.match(line)
        if match and ": note:" not in line:
            found.setdefault(match.group(1), []).append(line)
    return found


@functools.cache
def _mypy() -> dict[str, list[str]]:
    return _checked(_run("mypy"))


def _ruff(*extra: str) -> dict[str, list[str]]:
    return _checked(_run("ruff", "check", "--no-cache", "--output-format", "concise", *extra, *LINTED))


def _checked(proc: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """The findings of a run that exited 0 (clean) or 1 (findings); any other code, or findings we
    failed to read, means the tool crashed or its configuration is broken."""
    found = _findings(proc.stdout)
    assert proc.returncode == 0 or (proc.returncode == 1 and found), proc.stdout + proc.stderr
    return found


def _report(found: dict[str, list[str]]) -> str:
    return "\n".join(line for path in sorted(found) for line in found[path])


def test_ruff_finds_nothing_outside_the_pending_files() -> None:
    found = _ruff(*(f"--extend-exclude={path}" for path in PENDING))
    assert not found, "ruff (rules in pyproject.toml; `ruff check --fix` mends some):\n" + _report(found)


@pytest.mark.slow
def test_mypy_finds_nothing_outside_the_pending_files() -> None:
    found = {path: lines for path, lines in _mypy().items() if path not in PENDING}
    assert not found, "mypy (settings in pyproject.toml):\n" + _report(found)


@pytest.mark.slow
def test_every_pending_file_still_has_findings() -> None:
    """A file made clean leaves PENDING at once, so that it stays clean."""
    dirty = set(_ruff()) | set(_mypy())
    clean = sorted(set(PENDING) - dirty)
    assert not clean, f"clean now: remove from PENDING in tests/test_lint.py: {clean}"
