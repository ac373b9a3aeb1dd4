"""A person's invite in a real headless Chromium against a real `wire serve` stack: `wire human add`
prints a link, the browser accepts it and is logged in as maria, maria answers an escalation, and the
agent's banner reads "answered by maria" (issue 17). Screenshots of the new pages go with the others."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.test_cli_e2e import Wire, make_repo
from tests.test_dashboard_browser import browser, page, shot, wait_live  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow
#: This checkout, first on the path of the server and the CLI (the installed `wire` may be another's).
ROOT = Path(__file__).resolve().parent.parent
PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("human-stack"), workers=1, env={"PYTHONPATH": PYTHONPATH})
    yield server
    server.stop()


@pytest.fixture
def team(stack, tmp_path):
    """alice, whose `wire init` created the project (and printed its key)."""
    repo = make_repo(tmp_path, "clone", "git@github.com:acme/shop.git")
    env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / "cfg"),
           "HOME": str(tmp_path / "home"), "PYTHONPATH": PYTHONPATH}
    for var in ("WIRE_JSON", "WIRE_PROJECT_KEY", "WIRE_HUMAN_TOKEN", "WIRE_AS"):
        env.pop(var, None)
    alice = Wire(repo, env)
    key = alice.json("init", "--project", f"hum{time.time_ns() % 10**9}", "--alias", "alice")["project_key"]
    return alice, None, key


def test_an_invite_link_logs_maria_in_and_her_answer_carries_her_name(team, page):  # noqa: F811
    from playwright.sync_api import expect

    alice, _, key = team
    added = alice("human", "add", "maria", "--role", "lead", "--email", "maria@example.com", "--key", key)
    link = added.stdout.strip()
    assert "/invite/bw_hi_" in link
    page.goto(link)
    expect(page.locator("main")).to_contain_text("maria")
    page.click("#accept")  # opening the link only shows the button: previews cannot use it up
    expect(page.locator("#who")).to_have_text("maria (lead)")
    expect(page.locator("#personal-token")).to_contain_text("bw_ht_")
    shot(page, "human-welcome")
    esc = alice.json("escalate", "Ship on Friday?", "QA is half done.",
                     "--option", "A: ship", "--option", "B: wait")
    page.goto(link.split("/invite/")[0] + "/escalations")
    wait_live(page)
    page.locator(f"#esc-{esc['id']}").get_by_role("button", name="B: wait").click()
    expect(page.locator("main")).to_contain_text("Nothing pending")
    deadline, banner = time.monotonic() + 15, ""
    while time.monotonic() < deadline and "B: wait" not in banner:
        banner = alice("status").stderr
    assert f"escalation #{esc['id']} answered by maria: B: wait" in banner
    page.goto(link.split("/invite/")[0] + "/overview")
    expect(page.locator("#overview")).to_contain_text("1")
    shot(page, "human-overview")
    again = page.context.new_page()
    again.goto(link)  # the invite worked once
    expect(again.locator("main")).to_contain_text("unknown, used or expired")
