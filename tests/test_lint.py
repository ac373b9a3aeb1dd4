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


def _ruff() -> dict[str, list[str]]:
    return _checked(_run("ruff", "check", "--no-cache", "--output-format", "concise", *LINTED))


def _checked(proc: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """The findings of a run that exited 0 (clean) or 1 (findings); any other code, or findings we
    failed to read, means the tool crashed or its configuration is broken."""
    found = _findings(proc.stdout)
    assert proc.returncode == 0 or (proc.returncode == 1 and found), proc.stdout + proc.stderr
    return found


def _report(found: dict[str, list[str]]) -> str:
    return "\n".join(line for path in sorted(found) for line in found[path])


def test_ruff_finds_nothing() -> None:
    found = _ruff()
    assert not found, "ruff (rules in pyproject.toml; `ruff check --fix` mends some):\n" + _report(found)


@pytest.mark.slow
def test_mypy_finds_nothing() -> None:
    found = _mypy()
    assert not found, "mypy (settings in pyproject.toml):\n" + _report(found)
