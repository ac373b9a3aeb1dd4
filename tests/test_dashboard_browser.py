"""The dashboard in a real headless Chromium (Debian `chromium`, driven by Playwright) against a real
`wire serve` stack, with agents using the real `wire` CLI in git worktrees.

Screenshots of every page go to tests/artifacts/screenshots/ (CI keeps them as artifacts).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.browser import chromium, two_agents
from tests.test_cli_e2e import Wire, make_repo

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).parent / "artifacts" / "screenshots"
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
#: The issue's bound for a CLI action to show on an open page, without reload.
LIVE_WITHIN_MS = 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("dash-stack"), workers=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def team(stack, tmp_path):
    """alice (creates the project; her machine has the key saved) and bob, each in a clone."""
    return two_agents(stack.url, tmp_path, "dash")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.csp_errors = []  # type: ignore[attr-defined]
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_errors.append(m.text))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    assert page.csp_errors == [], page.csp_errors  # our own pages never trip the policy
    context.close()


def login(page, wire: Wire, key: str | None = None) -> dict:
    """Log in through `wire dashboard`: as a human with `key` (given explicitly, as every human-only
    command wants it), else read-only as the worktree's workspace."""
    link = wire.json("dashboard", *(["--key", key] if key else []))
    page.goto(link["url"])
    page.click("#continue")  # opening the link only shows the button: previews cannot use it up
    assert re.search(r"/team$", page.url), page.url
    wait_live(page)
    return link


def wait_live(page) -> None:
    page.wait_for_selector("body[data-ws=open]", timeout=10_000)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_claim_from_the_cli_shows_on_team_and_work_within_a_second(team, page, browser):
    from playwright.sync_api import expect

    alice, bob, key = team
    bead = bob.json("create", "Wire the checkout form", "-p", "P1")["id"]
    link = login(page, alice, key)
    assert link["access"] == "human"
    work = page.context.new_page()
    work.goto(page.url.replace("/team", "/work"))
    wait_live(work)
    bob("claim", bead)
    claims = page.locator('tr[data-alias="bob"] td.claims')
    expect(claims).to_contain_text(bead, timeout=LIVE_WITHIN_MS)
    card = work.locator("#col-in_progress article.card", has_text=bead)
    expect(card).to_contain_text("held by bob", timeout=LIVE_WITHIN_MS)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload happened
    shot(page, "team")
    shot(work, "work")


def test_an_escalation_answered_in_the_browser_reaches_the_agents_status_banner(team, page):
    from playwright.sync_api import expect

    alice, _, key = team
    login(page, alice, key)
    page.goto(page.url.replace("/team", "/escalations"))
    wait_live(page)
    esc = alice.json("escalate", "Drop the legacy orders table?", "Migration 42 needs it gone.",
                     "--option", "A: drop it", "--option", "B: keep it", "--severity", "high")
    card = page.locator(f"#esc-{esc['id']}")
    expect(card).to_contain_text("Drop the legacy orders table?", timeout=5000)  # arrives live
    shot(page, "escalations")
    card.get_by_role("button", name="B: keep it").click()
    expect(page.locator("main")).to_contain_text("Nothing pending")
    deadline, banner = time.monotonic() + 15, ""
    while time.monotonic() < deadline and "B: keep it" not in banner:
        banner = alice("status").stderr
    assert f"escalation #{esc['id']} answered by project key: B: keep it" in banner


def test_an_xss_payload_in_a_mail_and_a_bead_title_renders_as_text(team, page):
    alice, _, key = team
    bead = alice.json("create", XSS)["id"]
    alice("mail", "send", "bob", XSS, "--subject", XSS)
    alice("chat", "send", "bob", XSS)
    login(page, alice, key)
    base = page.url.rsplit("/", 1)[0]
    for path in ("/work", "/mail", "/activity", "/chat"):
        page.goto(base + path)
        assert "<script>window.__pwned = 1</script>" in page.locator("main").inner_text(), path
        assert page.evaluate("window.__pwned") is None, path
    page.goto(base + "/work")
    page.locator("#col-ready a.ref", has_text=bead).click()
    assert "<script>window.__pwned = 1</script>" in page.locator("h1").inner_text()
    assert page.evaluate("window.__pwned") is None and page.dialogs == []


def test_a_logged_out_browser_gets_the_login_page_and_the_key_logs_in(team, stack, page):
    _, _, key = team
    page.goto(stack.url + "/team")
    assert "/login" in page.url and page.locator("input[name=key]").is_visible()
    shot(page, "login")
    page.fill("input[name=key]", key)
    page.get_by_role("button", name="Log in").click()
    assert page.url.endswith("/team") and page.locator("header .access").inner_text() == "project key (admin)"


def test_every_page_renders_and_is_saved_as_a_screenshot(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    first = alice.json("create", "Schema migration", "-p", "P0", "-t", "feature")["id"]
    second = alice.json("create", "Orders API", "--blocked-by", first)["id"]
    alice.json("create", "Checkout page", "--blocked-by", second)
    bob("claim", first)
    bob("lock", "src/db/", "--reason", "migrating")
    alice("mail", "send", "bob", "Ping me when the schema lands", "--subject", "[" + first + "] schema")
    bob("chat", "send", "alice", "Schema lands in 20 minutes")
    alice("escalate", "Which database for reporting?", "Two options; both fine for now.",
          "--option", "PostgreSQL", "--option", "ClickHouse")
    login(page, alice, key)
    base = page.url.rsplit("/", 1)[0]
    pages = {"team": "/team", "work": "/work", "graph": "/work/graph", "chat": "/chat", "mail": "/mail",
             "escalations": "/escalations", "activity": "/activity", "policy": "/policy"}
    for name, path in pages.items():
        page.goto(base + path)
        expect(page.locator("main h1")).to_be_visible()
        shot(page, name)
    page.goto(base + "/work")
    page.locator("#col-blocked a.ref", has_text=second).click()
    expect(page.locator("svg.graph")).to_be_visible()
    shot(page, "bead")
    page.goto(base + "/chat")
    page.locator("main table a").first.click()
    expect(page.locator("ol.conversation")).to_contain_text("Schema lands in 20 minutes")
    shot(page, "conversation")
    _keep_for_readme()


def _keep_for_readme() -> None:
    """docs/dashboard.png is the README's picture; `BEADWIRE_UPDATE_DOCS=1` refreshes it from this run."""
    if os.environ.get("BEADWIRE_UPDATE_DOCS") == "1":
        shutil.copy(SHOTS / "team.png", Path(__file__).parents[1] / "docs" / "dashboard.png")


def test_wire_dashboard_without_the_key_opens_a_read_only_session(team, page):
    from playwright.sync_api import expect

    alice, bob, _ = team
    keyless = bob  # the key saved in keys.json is never used for a human session: --key is
    esc = bob.json("escalate", "Rename the service?", "Marketing asked.", "--option", "yes", "--option", "no")
    theirs = alice.json("escalate", "Alice's own question", "Only humans and alice see it.")
    link = login(page, keyless)
    assert link["access"] == "viewer"
    page.goto(page.url.replace("/team", "/escalations"))
    expect(page.locator(f"#esc-{esc['id']}")).to_contain_text("Rename the service?")
    assert page.locator(f"#esc-{esc['id']} form.answer").count() == 0
    assert "can read only" in page.locator("main").inner_text()
    assert page.locator(f"#esc-{theirs['id']}").count() == 0  # another agent's: not this workspace's to read


def test_wire_dashboard_open_hands_the_link_to_the_browser(team, tmp_path):
    import sys

    alice, _, _ = team
    out = tmp_path / "opened.txt"
    opener = f"{sys.executable} -c \"import sys; open('{out}', 'w').write(sys.argv[1])\" %s"
    answer = Wire(alice.cwd, {**alice.env, "BROWSER": opener}).json("dashboard", "--open")
    assert answer["opened"] is True and out.read_text() == answer["url"]
    assert answer["url"].startswith(alice.env["WIRE_URL"] + "/login/")


def test_the_bead_page_lists_the_commits_of_its_claim_live_and_after_close(stack, page, tmp_path):
    """bob claims a bead in a git worktree on `wire/bob` and commits twice naming it (one subject
    carries markup): the bead page shows where the work sits, and after `wire close` the recorded commits."""
    from playwright.sync_api import expect

    root = Path(__file__).resolve().parents[1]
    project, wires, key = f"git{time.time_ns() % 10**9}", [], None
    for i, name in enumerate(("alice", "bob")):
        repo = make_repo(tmp_path, f"clone{i}", "git@github.com:acme/shop.git")
        env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg{i}"),
               "HOME": str(tmp_path / f"home{i}"), "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": f"{name}@x",
               "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": f"{name}@x",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        for var in ("WIRE_JSON", "WIRE_PROJECT_KEY"):
            env.pop(var, None)
        wire = Wire(repo, env)  # PYTHONPATH: this tree's `wire`, which sends the git state
        result = wire.json("init", "--project", project, "--alias", name, *(["--key", key] if key else []))
        key = key or result["project_key"]
        wires.append(wire)
    alice, bob = wires
    bead = bob.json("create", "Round the cart total")["id"]
    _git(bob, "commit", "-q", "--allow-empty", "-m", "start")
    _git(bob, "checkout", "-q", "-b", "wire/bob")
    bob("claim", bead)
    _git(bob, "commit", "-q", "--allow-empty", "-m", f"{bead}: total rounds half up")
    _git(bob, "commit", "-q", "--allow-empty", "-m", f"{bead}: <img src=x onerror=\"window.__pwned = 3\">")
    first = _git(bob, "rev-parse", "--short", "HEAD~1")
    bob("status")  # presence now carries the git state
    login(page, alice, key)
    base = page.url.rsplit("/", 1)[0]
    page.goto(base + "/work")
    page.locator("#col-in_progress a.ref", has_text=bead).click()
    expect(page.locator("p.git-live")).to_contain_text("wire/bob")
    expect(page.locator("p.git-live")).to_contain_text("2 ahead")
    expect(page.locator("p.git-live")).to_contain_text("not yet merged")
    commits = page.locator("#bead-commits")
    expect(commits).to_contain_text(first)
    expect(commits).to_contain_text("total rounds half up")
    assert '<img src=x onerror="window.__pwned = 3">' in commits.inner_text()  # shown as text
    assert page.evaluate("window.__pwned") is None
    bead_url = page.url
    bob("close", bead)
    page.goto(bead_url)
    expect(page.locator("#bead-commits li:not(.live)")).to_have_count(2)
    expect(page.locator("#bead-commits")).to_contain_text(first)
    assert page.locator("p.git-live").count() == 0  # closed: no live state, the recorded commits stay
    shot(page, "bead-commits")


def _git(wire: Wire, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=wire.cwd, env=wire.env, check=True, capture_output=True,
                          text=True).stdout.strip()
def test_add_an_agent_hands_out_a_join_key_that_a_new_worktree_joins_with(team, page, tmp_path):
    from playwright.sync_api import expect

    alice, _, key = team
    login(page, alice, key)
    page.click("a.add-agent")
    expect(page.locator("main h1")).to_have_text("Add an agent")
    expect(page.locator("#paste-text")).to_contain_text("/llms.txt")
    page.click("form.join-key button")
    paste = page.locator("#paste-text").inner_text()
    shot(page, "add_agent")
    join_key = re.search(r"(bw_jk_[A-Za-z0-9_-]+)", paste).group(1)
    project = alice.json("whoami")["project"]["slug"]
    assert f"Project: {project}" in paste
    repo = make_repo(tmp_path, "newcomer", "git@github.com:acme/shop.git")
    root = str(Path(__file__).resolve().parents[1])  # this checkout's `wire`
    env = {**alice.env, "WIRE_CONFIG_DIR": str(tmp_path / "cfg-new"), "HOME": str(tmp_path / "home-new"),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    joined = Wire(repo, env).json("init", "--project", project, "--alias", "carol", "--join-key", join_key)
    assert joined["workspace"]["alias"] == "carol"
    page.goto(page.url.replace("/agents/add", "/team"))
    expect(page.locator("#team-table")).to_contain_text("carol")
