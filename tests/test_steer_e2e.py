"""Steering end to end (issue 17): a real `wire serve` stack (its own Redis server and SQLite), agents
using the real `wire` CLI in git clones, and the dashboard in a real headless Chromium (Playwright).

- a pause made in the browser makes `wire claim` refuse (exit 3) and `wire prime` say who paused and why;
- an audit row on the /audit page names who did what in the browser;
- `wire assign` puts the bead at the top of the assignee's prime, another agent's claim gets exit 3.
"""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from tests.browser import ROOT, chromium, two_agents
from tests.test_dashboard_browser import login, shot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("steer-stack"), workers=1, env={"PYTHONPATH": str(ROOT)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def team(stack, tmp_path):
    """alice (created the project) and bob, each in a clone; and the project key."""
    return two_agents(stack.url, tmp_path, "steer", humans=False)


def test_a_pause_in_the_browser_makes_wire_claim_refuse_until_resumed(team, page):
    alice, bob, key = team
    bead = alice.json("create", "Wire the checkout form")["id"]
    login(page, alice, key)
    row = page.locator('tr[data-alias="bob"]')
    row.locator("form.pause input[name=reason]").fill("wrong branch: wait for the rebase")
    row.locator("form.pause button").click()
    page.wait_for_selector('tr[data-alias="bob"] .paused')
    assert "paused by project key: wrong branch: wait for the rebase" in row.locator(".paused").inner_text()
    shot(page, "team-paused")

    refused = bob("claim", bead, code=3)
    assert "you are paused by project key: wrong branch: wait for the rebase" in refused.stderr
    prime = bob("prime").stdout
    assert prime.splitlines()[0].startswith(
        "PAUSED: paused by project key: wrong branch: wait for the rebase.")
    assert "PAUSED: paused by project key" in bob("whoami").stderr  # every command's banner says so

    page.locator('tr[data-alias="bob"] form.resume button').click()
    page.wait_for_selector('tr[data-alias="bob"] form.pause')
    time.sleep(5.5)  # the server caches a token's workspace up to 5 s (store/workspaces.py); claims read SQL
    assert bob.json("claim", bead)["claimed"] is True


def test_the_audit_page_names_who_paused_in_the_browser_and_exports_it(team, page):
    alice, bob, key = team
    bob.json("create", "Some work")
    login(page, alice, key)
    page.locator('tr[data-alias="bob"] form.pause input[name=reason]').fill("<b>stop</b>")
    page.locator('tr[data-alias="bob"] form.pause button').click()
    page.wait_for_selector('tr[data-alias="bob"] .paused')
    page.click("nav a:has-text('Audit')")
    page.fill("#audit-filters input[name=action]", "agent.")
    page.click("#audit-filters button[type=submit]")
    row = page.locator("tr.audit-row", has_text="agent.paused")
    assert row.count() == 1
    assert row.locator("td.who").inner_text().startswith("project key")
    cells = row.inner_text()
    assert "dashboard session" in cells and "127.0.0.1" in cells and "<b>stop</b>" in cells  # escaped, shown
    assert page.locator("tr.audit-row b").count() == 0
    shot(page, "audit")
    csv_url = page.locator("a.export", has_text="CSV").get_attribute("href")
    body = page.context.request.get(page.url.split("/audit")[0] + csv_url).text()
    [paused] = [r for r in csv.DictReader(io.StringIO(body)) if r["action"] == "agent.paused"]
    assert (paused["who"], paused["credential"]) == ("project key", "dashboard session")
    json_url = page.locator("a.export", has_text="JSON").get_attribute("href")
    rows = json.loads(page.context.request.get(page.url.split("/audit")[0] + json_url).text())
    assert [r["detail"]["after"]["reason"] for r in rows if r["action"] == "agent.paused"] == ["<b>stop</b>"]


def test_wire_assign_heads_the_assignees_prime_and_another_claim_gets_exit_3(team):
    alice, bob, key = team
    bead = alice.json("create", "Fix the login page")["id"]
    out = alice("assign", bead, "bob", "--reason", "you wrote auth", "--key", key).stdout
    assert out.strip() == f"{bead} is assigned to bob by project key: you wrote auth"
    prime = bob("prime").stdout.splitlines()
    assert prime[0] == "ASSIGNED TO YOU (wire claim ID):"
    assert bead in prime[1] and prime[2].strip() == "assigned to you by project key: you wrote auth"
    refused = alice("claim", bead, code=3)
    assert f"{bead} is assigned to bob by project key" in refused.stderr
    assert bead not in alice("ready").stdout
    assert alice.json("claim", bead, "--jump-in", "bob is away")["claimed"] is True
    assert "jumped in on" in bob("mail", "list").stdout + bob("whoami").stderr
    # a developer may not assign; the audit log names who did what, from the CLI too
    assert "coordinator" in bob("assign", bead, "alice", code=1).stderr
    rows = alice.json("audit", "--bead", bead, "--key", key)
    assert [(r["action"], r["who"], r["credential"]) for r in rows] == [
        ("claim.created", "alice", "workspace token"),
        ("bead.assigned", "alice", "workspace token"),  # jump-in
        ("bead.assigned", "project key", "project key"), ("bead.created", "alice", "workspace token")]
    table = alice("audit", "--who", "project key", "--key", key).stdout
    assert "bead.assigned" in table and "project key" in table
