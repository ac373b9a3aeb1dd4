"""What the browser and end-to-end tests share: Debian's Chromium under Playwright, and the environment
a real `wire` subprocess runs in (this checkout's code, none of the caller's wire settings)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Debian's package (`apt-get install chromium`; .ci/run installs it): never `playwright install`.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser; a missing binary fails the test (it must run in CI, not skip)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wire_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a `wire` subprocess: this checkout first on PYTHONPATH, `extra` on top, and
    no WIRE_JSON or WIRE_PROJECT_KEY leaking in from the caller."""
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, **extra}
    for var in ("WIRE_JSON", "WIRE_PROJECT_KEY"):
        env.pop(var, None)
    return env


def two_agents(url: str, tmp_path: Path, prefix: str, humans: bool = True) -> tuple[Any, Any, str]:
    """alice (creates a fresh project `<prefix>N`; her machine keeps the key) and bob, each in a clone of
    one origin, running this checkout's `wire` against `url`; and the project key."""
    from tests.test_cli_e2e import Wire, make_repo

    project = f"{prefix}{time.time_ns() % 10**9}"
    wires, key = [], None
    for i, name in enumerate(("alice", "bob")):
        repo = make_repo(tmp_path, f"clone{i}", "git@github.com:acme/shop.git")
        wire = Wire(repo, wire_env({"WIRE_URL": url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg{i}"),
                                    "HOME": str(tmp_path / f"home{i}")}))
        args = ["init", "--project", project, "--alias", name, *(["--human", name.title()] if humans else [])]
        result = wire.json(*args, *(["--key", key] if key else []))
        key = key or result["project_key"]
        wires.append(wire)
    return wires[0], wires[1], key
