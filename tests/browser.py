"""What the browser and end-to-end tests share: Debian's Chromium under Playwright, and the environment
a real `wire` subprocess runs in (this checkout's code, none of the caller's wire settings)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           **extra}
    for var in ("WIRE_JSON", "WIRE_PROJECT_KEY"):
        env.pop(var, None)
    return env
