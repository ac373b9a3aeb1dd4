"""Steering by a person, in a real headless Chromium against a real `wire serve` stack (issue 17).

maria is invited with `wire human add` and logs in through her invite link in the browser; alice and
bob are agents using the real `wire` CLI (this checkout's code, through PYTHONPATH) in git clones.

- maria assigns a bead to bob on its page: bob's `wire prime` heads with it ("assigned to you by
  maria"), alice's `wire claim` of it exits 3 ("is assigned to bob by maria");
- maria pauses bob on the team page: bob's `wire claim` exits 3 ("paused by maria");
- what maria did shows on the /audit page and in /audit.json under her name.
"""

from __future__ import annotations

import json
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

    server = start_stack(tmp_path_factory.mktemp("steer-browser"), workers=1, env={"PYTHONPATH": PYTHONPATH})
    yield server
    server.stop()


@pytest.fixture
def team(stack, tmp_path):
    """alice (created the project) and bob, each in a clone, and the project key."""
    project = f"stb{time.time_ns() % 10**9}"
    wires, key = [], None
    for i, name in enumerate(("alice", "bob")):
        repo = make_repo(tmp_path, f"clone{i}", "git@github.com:acme/shop.git")
        env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg{i}"),
               "HOME": str(tmp_path / f"home{i}"), "PYTHONPATH": PYTHONPATH}
        for var in ("WIRE_JSON", "WIRE_PROJECT_KEY", "WIRE_HUMAN_TOKEN", "WIRE_AS"):
            env.pop(var, None)
        wire = Wire(repo, env)
        result = wire.json("init", "--project", project, "--alias", name, *(["--key", key] if key else []))
        key = key or result["project_key"]
        wires.append(wire)
    return wires[0], wires[1], key


def as_maria(tab, alice: Wire, key: str) -> str:
    """Invite maria (a lead) and accept the invite in the browser; the dashboard's base URL."""
    from playwright.sync_api import expect

    link = alice("human", "add", "maria", "--role", "lead", "--key", key).stdout.strip()
    assert "/invite/" in link
    tab.goto(link)
    tab.click("#accept")
    expect(tab.locator("#who")).to_have_text("maria (lead)")
    return link.split("/invite/")[0]


def open_bead(tab, base: str, ref: str) -> None:
    """The bead's page, reached as a person would: from the Work board."""
    tab.goto(base + "/work")
    tab.locator("a.ref", has_text=ref).first.click()
    tab.wait_for_selector("#assign")
    wait_live(tab)


def test_maria_assigns_a_bead_in_the_browser_and_it_heads_bobs_prime_and_refuses_alice(team, page):  # noqa: F811
    from playwright.sync_api import expect

    alice, bob, key = team
    ref = alice.json("create", "Fix the login page")["id"]
    alice.json("create", "Something else")
    base = as_maria(page, alice, key)
    open_bead(page, base, ref)
    page.select_option("#assign select[name=alias]", "bob")
    page.fill("#assign input[name=reason]", "you wrote <auth>")
    page.click("#assign button[type=submit]")
    expect(page.locator("#flash")).to_contain_text(f"{ref} is assigned to bob by maria: you wrote <auth>")
    expect(page.locator("#assignment")).to_have_text("assigned to bob by maria: you wrote <auth>")
    shot(page, "bead-assigned")

    prime = bob("prime").stdout.splitlines()
    assert prime[0] == "ASSIGNED TO YOU (wire claim ID):"
    assert ref in prime[1] and prime[2].strip() == "assigned to you by maria: you wrote <auth>"
    refused = alice("claim", ref, code=3)
    assert f"{ref} is assigned to bob by maria" in refused.stderr

    page.click("#unassign button")  # anyone's again
    expect(page.locator("#flash")).to_contain_text(f"{ref} is no longer assigned.")
    expect(page.locator("#assignment")).to_have_count(0)
    assert "ASSIGNED TO YOU" not in bob("prime").stdout
    assert alice.json("claim", ref)["claimed"] is True


def test_maria_pauses_an_agent_in_the_browser_and_its_claim_is_refused(team, page):  # noqa: F811
    alice, bob, key = team
    ref = alice.json("create", "Wire the checkout form")["id"]
    base = as_maria(page, alice, key)
    page.goto(base + "/team")
    wait_live(page)
    row = page.locator('tr[data-alias="bob"]')
    row.locator("form.pause input[name=reason]").fill("wrong branch")
    row.locator("form.pause button").click()
    page.wait_for_selector('tr[data-alias="bob"] .paused')
    assert row.locator(".paused").inner_text() == "paused by maria: wrong branch"
    refused = bob("claim", ref, code=3)
    assert "paused by maria: wrong branch" in refused.stderr
    assert bob("prime").stdout.splitlines()[0].startswith("PAUSED: paused by maria: wrong branch")


def test_what_maria_did_in_the_browser_is_on_the_audit_page_and_in_its_json(team, page):  # noqa: F811
    alice, _bob, key = team
    ref = alice.json("create", "Fix the login page")["id"]
    base = as_maria(page, alice, key)
    open_bead(page, base, ref)
    page.select_option("#assign select[name=alias]", "bob")
    page.click("#assign button[type=submit]")
    page.wait_for_selector("#assignment")
    page.click("nav a:has-text('Audit')")
    page.fill("#audit-filters input[name=who]", "maria")
    page.click("#audit-filters button[type=submit]")
    row = page.locator("tr.audit-row", has_text="bead.assigned")
    assert row.count() == 1
    assert row.locator("td.who").inner_text().split()[0] == "maria"
    assert ref in row.inner_text()
    json_url = page.locator("a.export", has_text="JSON").get_attribute("href")
    rows = json.loads(page.context.request.get(base + json_url).text())
    [assigned] = [r for r in rows if r["action"] == "bead.assigned"]
    assert assigned["who"] == "maria" and assigned["detail"]["after"]["assignee"] == "bob"
    assert {r["who"] for r in rows} == {"maria"}
