"""A dashboard that acts (issue 17): talk, work, revoke and policies as plain CSRF-checked forms.

The first half drives the forms through the Flask test client (CSRF, permissions, bad input, what
each form changes and which events it sends). The second half is a real headless Chromium
(Debian `chromium`, driven by Playwright) against a real `wire serve` stack, with agents using the
real `wire` CLI: what a person does in the browser reaches the agents.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from html import unescape as html_unescape
from types import SimpleNamespace

import pytest

from cli.banner import item_line
from store.models import Bead, Policy, Workspace
from tests.browser import ROOT, chromium, two_agents
from tests.test_dashboard import _csrf, _events, _link, _login, redeem


@pytest.fixture
def shop(make_agent):
    alice = make_agent(project="shop", alias="alice", human="Alice")
    bob = make_agent(project="shop", alias="bob", role="reviewer")
    return SimpleNamespace(alice=alice, bob=bob, key=make_agent.keys["shop"], id=alice.info["project"]["id"])


@pytest.fixture
def human(shop, client):
    """A project-key session in the test client; `human.post(path, **form)` sends a form with its token."""
    _login(client, shop.key)
    token = _csrf(client, "/team")

    def post(path: str, **form):
        return client.post(path, data={"csrf_token": token, **form})

    return SimpleNamespace(post=post, csrf=token)


def _banner(agent) -> dict:
    header = agent.get("/whoami").headers.get("X-Wire-Banner")
    return json.loads(header) if header else {}


def _pk(ref: str) -> int:
    return Bead.get(Bead.ref == ref).id


def _flash(client) -> str:
    """What the page a form redirected to says (the one-shot message)."""
    html = client.get("/team").get_data(as_text=True)
    match = re.search(r'<p id="flash" class="flash (\w+)"[^>]*>([^<]*)</p>', html)
    return f"{match.group(1)}: {html_unescape(match.group(2))}" if match else ""


# -- talk -----------------------------------------------------------------------------------------

def test_mail_from_the_dashboard_reaches_the_agents_banner_marked_as_from_a_human(
        shop, human, client, worker):
    r = human.post("/mail/send", to="bob", subject="Stop the migration", body="Finance needs the table.")
    assert r.status_code == 303 and r.headers["Location"].endswith("/mail")
    assert _flash(client) == "ok: Mail sent to bob."
    worker.run()
    (item,) = _banner(shop.bob)["new"]
    assert item["from"] == "dashboard" and item["human"] is True
    assert item_line(item) == "mail from dashboard (human): Stop the migration"
    # an agent's mail is not marked
    shop.alice.post("/mail", {"to": "bob", "subject": "hi", "body": "from an agent"})
    worker.run()
    (item,) = _banner(shop.bob)["new"]
    assert item_line(item) == "mail from alice: hi" and "human" not in item


def test_mail_to_a_role_or_everyone_and_to_nobody(shop, human, client, worker):
    assert human.post("/mail/send", to="@reviewer", body="review please").status_code == 303
    assert human.post("/mail/send", to="@all", body="standup in 5").status_code == 303
    worker.run()
    assert [i["text"] for i in _banner(shop.bob)["new"]] == ["review please", "standup in 5"]
    assert [i["text"] for i in _banner(shop.alice)["new"]] == ["standup in 5"]
    unknown = human.post("/mail/send", to="bobb", body="typo")
    assert unknown.status_code == 404
    assert "no workspace &#39;bobb&#39; in this project; did you mean bob?" in unknown.get_data(as_text=True)


def test_a_reply_in_the_browser_ends_an_agents_chat_wait(shop, human, client, app):
    r = human.post("/chat/start", to="alice", body="Which database for the cache?")
    thread = re.search(r"/chat/(c:\d+:\d+)$", r.headers["Location"]).group(1)
    asked = shop.alice.post("/chat", {"to": "dashboard", "body": "sqlite or redis?", "wait": 60})
    assert asked.status_code == 201, asked.json
    page = client.get(f"/chat/{thread}").get_data(as_text=True)
    assert "sqlite or redis?" in page and "Reply to alice" in page
    cursor = asked.json["cursor"]
    assert human.post(f"/chat/{thread}/reply", body="redis").status_code == 303
    after = asked.json["message"]["id"]
    got = shop.alice.get(f"/chat/wait?with=dashboard&after={after}&cursor={cursor}&timeout=2")
    assert got.status_code == 200 and [m["body"] for m in got.json["messages"]] == ["redis"]
    assert got.json["messages"][0]["data"] == {"human": True}


def test_a_person_cannot_reply_in_someone_elses_conversation(shop, human, client):
    shop.alice.post("/chat", {"to": "bob", "body": "hi bob"})
    thread = re.search(r'href="/chat/(c:\d+:\d+)"', client.get("/chat").get_data(as_text=True)).group(1)
    assert "Reply to" not in client.get(f"/chat/{thread}").get_data(as_text=True)
    r = human.post(f"/chat/{thread}/reply", body="butting in")
    assert r.status_code == 404 and "not in this conversation" in r.get_data(as_text=True)


# -- work -----------------------------------------------------------------------------------------

def test_create_edit_comment_link_close_and_reopen_a_bead(shop, human, client, app):
    r = human.post("/work/new", title="Add a cache", description="for reads", priority="1", labels="perf, db")
    assert r.status_code == 303
    bead = Bead.get(Bead.title == "Add a cache")
    assert (r.headers["Location"].endswith(f"/work/bead/{bead.id}")
            and (bead.priority, bead.status) == (1, "open"))
    assert json.loads(bead.labels) == ["perf", "db"] and json.loads(bead.data)["created_by"] == "dashboard"
    base = f"/work/bead/{bead.id}"
    assert human.post(f"{base}/edit", title="Add a read cache", description="x", priority="0",
                      status="blocked", labels="db, later").status_code == 303
    bead = Bead.get_by_id(bead.id)
    assert ((bead.title, bead.priority, bead.status, json.loads(bead.labels))
            == ("Add a read cache", 0, "blocked", ["db", "later"]))
    assert human.post(f"{base}/comment", text="measured: 40% misses").status_code == 303
    blocker = shop.alice.create("Pick a cache")
    assert human.post(f"{base}/link", target=blocker).status_code == 303
    shown = shop.alice.get(f"/beads/{bead.ref}").json
    assert (shown["comments"][0]["author"] == "dashboard"
            and shown["dependencies"][0]["depends_on_id"] == blocker)
    assert human.post(f"{base}/close", reason="not needed").status_code == 303
    assert Bead.get_by_id(bead.id).status == "closed"
    assert human.post(f"{base}/reopen").status_code == 303
    assert Bead.get_by_id(bead.id).status == "open"
    kinds = ("bead.created", "bead.updated", "bead.commented", "bead.linked", "bead.closed", "bead.reopened")
    for kind in kinds:  # what refreshes every open dashboard
        assert [e for e in _events(app, shop.id, kind) if e["bead"] == bead.ref], kind


def test_releasing_a_claim_tells_the_holder_who_and_why(shop, human, client, worker):
    ref = shop.bob.create("Wire the checkout")
    shop.bob.post(f"/beads/{ref}/claim")
    r = human.post(f"/work/bead/{_pk(ref)}/release", reason="bob is off today")
    assert r.status_code == 303 and _flash(client).startswith("ok: Released bob's claim")
    worker.run()
    texts = [i["text"] for i in _banner(shop.bob)["new"]]
    assert f"dashboard (human) released your claim on {ref}: bob is off today" in texts
    assert shop.alice.post(f"/beads/{ref}/claim").status_code == 200  # free for anyone now


def test_bad_input_is_a_4xx_with_a_message_and_changes_nothing(shop, human, client):
    ref = shop.bob.create("Held")
    shop.bob.post(f"/beads/{ref}/claim")
    pk, free = _pk(ref), _pk(shop.alice.create("Free"))
    cases = [
        ("/work/new", {"title": "  "}, 422, "title: Length must be between 1 and 1000."),
        ("/work/new", {"title": "x", "priority": "9"}, 422, "priority: Must be greater than or equal to 0"),
        ("/work/new", {"title": "x\x00y"}, 422, "NUL character"),
        (f"/work/bead/{pk}/edit", {"title": "t", "priority": "1", "status": "nonsense"}, 422,
         "status: Must be one of"),
        (f"/work/bead/{pk}/release", {"reason": " "}, 422, "say why you release the claim"),
        (f"/work/bead/{pk}/link", {"target": "nope-123"}, 404, "no bead nope-123"),
        (f"/work/bead/{pk}/link", {"target": ref}, 409, "linking would make a cycle"),
        (f"/work/bead/{pk}/close", {}, 409, "only the holder closes it: release the claim first"),
        (f"/work/bead/{pk}/edit", {"title": "t", "priority": "1", "status": "open"}, 409, "held by bob"),
        (f"/work/bead/{free}/edit", {"title": "Free", "priority": "2", "status": "in_progress"}, 422,
         "in_progress comes from an agent&#39;s claim"),
        ("/work/bead/999999/comment", {"text": "x"}, 404, "no bead 999999"),
        ("/mail/send", {"to": "bob", "body": ""}, 422, "body: Length must be between 1 and"),
        ("/policy/save", {"markdown": "# Role: Bad Name!\n\nx"}, 422, ""),
        ("/policy/activate", {"version": "77"}, 404, "no policy version 77"),
    ]
    for path, form, status, message in cases:
        r = human.post(path, **form)
        html = r.get_data(as_text=True)
        assert r.status_code == status, (path, form, r.status_code, html[-500:])
        assert message in html, (path, html[-800:])
        if "999999" not in path:  # the form's own page, with the message on top
            assert 'class="flash error"' in html and "<form" in html, path
    assert Bead.select().count() == 2 and Bead.get_by_id(pk).status == "in_progress"
    assert Bead.get_by_id(pk).title == "Held" and Bead.get_by_id(free).status == "open"
    assert Policy.select().count() <= 1


def test_every_form_refuses_a_missing_wrong_or_cross_site_token(shop, human, client):
    ref = shop.bob.create("Held")
    shop.bob.post(f"/beads/{ref}/claim")
    pk = _pk(ref)
    forms = [("/mail/send", {"to": "bob", "body": "x"}), ("/chat/start", {"to": "bob", "body": "x"}),
             ("/work/new", {"title": "forged"}), (f"/work/bead/{pk}/comment", {"text": "forged"}),
             (f"/work/bead/{pk}/release", {"reason": "forged"}), (f"/work/bead/{pk}/close", {}),
             ("/team/bob/revoke", {"confirm": "yes"}),
             ("/policy/save", {"markdown": "# Invariants\n\nforged"}), ("/policy/activate", {"version": "1"})]
    for path, form in forms:
        for data in (form, {**form, "csrf_token": "guess"}):
            assert client.post(path, data=data).status_code == 403, path
        cross = client.post(path, data={**form, "csrf_token": human.csrf}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403, path
    assert Bead.select().count() == 1 and Bead.get_by_id(pk).status == "in_progress"
    assert not Workspace.get(Workspace.alias == "bob").revoked
    assert not Workspace.select().where(Workspace.role == "human").exists()  # nobody acted


def _as_person(client, key: str, name: str, role: str) -> str:
    """Invite a person with `role` and accept the invite in `client`: a CSRF token of their session."""
    invite = client.post("/v1/humans", json={"name": name, "role": role},
                         headers={"Authorization": f"Bearer {key}"}).json["invite"]
    page = client.get(f"/invite/{invite}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/invite/{invite}", data={"csrf_token": csrf}).status_code == 200
    return _csrf(client, "/team")


def test_a_viewer_can_read_but_not_post_and_a_lead_cannot_administer(shop, client):
    """`_require` is the person's role (store/humans.py): viewer < lead < admin."""
    ref = shop.bob.create("Held")
    pk = _pk(ref)
    token = _as_person(client, shop.key, "vera", "viewer")
    page = client.get(f"/work/bead/{pk}")
    assert page.status_code == 200 and 'action="/work/bead/' not in page.get_data(as_text=True)  # no forms
    for path, form in [("/mail/send", {"to": "bob", "body": "x"}), ("/work/new", {"title": "x"}),
                       (f"/work/bead/{pk}/close", {}), ("/policy/activate", {"version": "1"}),
                       ("/team/bob/revoke", {"confirm": "yes"})]:
        r = client.post(path, data={"csrf_token": token, **form})
        assert r.status_code == 403 and ("lead" in r.text or "admin" in r.text), path
    assert Bead.get_by_id(pk).status == "open" and not Workspace.get(Workspace.alias == "bob").revoked
    # a lead may work but not revoke or change policies
    token = _as_person(client, shop.key, "leo", "lead")
    assert client.post(f"/work/bead/{pk}/comment",
                       data={"csrf_token": token, "text": "ok"}).status_code == 303
    assert client.post("/team/bob/revoke", data={"csrf_token": token, "confirm": "yes"}).status_code == 403
    assert client.post("/policy/activate", data={"csrf_token": token, "version": "1"}).status_code == 403
    assert not Workspace.get(Workspace.alias == "bob").revoked


def test_a_workspace_read_only_session_cannot_post(shop, client):
    r = redeem(client, _link(client, shop.bob.token)["path"])
    assert r.status_code == 303
    token = _csrf(client, "/team")
    r = client.post("/mail/send", data={"csrf_token": token, "to": "alice", "body": "as bob?"})
    assert r.status_code == 403


# -- assign and unassign (the bead page) -----------------------------------------------------------

def test_assigning_from_the_bead_page_binds_the_bead_and_tells_the_assignee(shop, client, worker):
    ref = shop.alice.create("Fix the login page")
    pk = _pk(ref)
    token = _as_person(client, shop.key, "maria", "lead")
    page = client.get(f"/work/bead/{pk}").get_data(as_text=True)
    assert '<option >bob</option>' in page and ">maria</option>" not in page  # agents only, not people
    r = client.post(f"/work/bead/{pk}/assign",
                    data={"csrf_token": token, "alias": "bob", "reason": "you wrote auth"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/work/bead/{pk}")
    page = client.get(f"/work/bead/{pk}").get_data(as_text=True)
    assert "assigned to <b>bob</b> by maria: you wrote auth" in page and 'id="unassign"' in page
    worker.run()
    texts = [i["text"] for i in _banner(shop.bob)["new"]]
    assert any(t.startswith(f"{ref} was assigned to you by maria: you wrote auth") for t in texts), texts
    refused = shop.alice.post(f"/beads/{ref}/claim")
    assert refused.status_code == 409 and "is assigned to bob by maria" in refused.text
    # unassign: the bead is anyone's again, and bob is told
    r = client.post(f"/work/bead/{pk}/unassign", data={"csrf_token": token})
    assert r.status_code == 303 and _flash(client) == f"ok: {ref} is no longer assigned."
    bead = Bead.get_by_id(pk)
    assert (bead.assignee, bead.assigned_by) == ("", "")
    assert 'id="unassign"' not in client.get(f"/work/bead/{pk}").get_data(as_text=True)
    assert shop.alice.post(f"/beads/{ref}/claim").status_code == 200


def test_the_assign_form_refuses_bad_input_a_viewer_and_a_missing_token(shop, human, client):
    ref = shop.alice.create("Fix the login page")
    pk = _pk(ref)
    refusals = [({"alias": "nobody"}, 404, "no agent &#39;nobody&#39; in this project"),
                ({"alias": ""}, 422, "alias: Length must be between 1 and 64"),
                ({"alias": "bob", "reason": "x" * 2001}, 422, "reason: Longer than maximum"),
                ({"alias": "bob\x00"}, 422, "NUL character")]
    for form, status, message in refusals:
        r = human.post(f"/work/bead/{pk}/assign", **form)
        html = r.get_data(as_text=True)
        assert (r.status_code == status and message in html
                and 'class="flash error"' in html), (form, html[-600:])
    assert human.post("/work/bead/999999/assign", alias="bob").status_code == 404
    for data in ({"alias": "bob"}, {"alias": "bob", "csrf_token": "guess"}):
        assert client.post(f"/work/bead/{pk}/assign", data=data).status_code == 403
    cross = client.post(f"/work/bead/{pk}/assign", data={"alias": "bob", "csrf_token": human.csrf},
                        headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert Bead.get_by_id(pk).assignee == ""
    token = _as_person(client, shop.key, "vera", "viewer")
    assert 'id="assign"' not in client.get(f"/work/bead/{pk}").get_data(as_text=True)
    r = client.post(f"/work/bead/{pk}/assign", data={"csrf_token": token, "alias": "bob"})
    assert r.status_code == 403 and "lead" in r.text
    assert client.post(f"/work/bead/{pk}/unassign", data={"csrf_token": token}).status_code == 403
    assert Bead.get_by_id(pk).assignee == ""


# -- agents and policies -------------------------------------------------------------------------

def test_revoking_a_workspace_asks_first(shop, human, client):
    first = human.post("/team/bob/revoke")
    assert first.status_code == 200 and "Revoke bob?" in first.get_data(as_text=True)
    assert shop.bob.get("/whoami").status_code == 200  # nothing happened yet
    done = human.post("/team/bob/revoke", confirm="yes")
    assert done.status_code == 303 and _flash(client).startswith("ok: Revoked bob")
    assert shop.bob.get("/whoami").status_code == 401
    assert human.post("/team/nobody/revoke", confirm="yes").status_code == 404


def test_a_policy_is_previewed_then_saved_then_an_older_version_activated(shop, human, client, worker):
    client.get("/policy")
    text = "# Invariants\n\nNever force-push main.\n\n# Role: reviewer\n\nRead every diff twice."
    preview = human.post("/policy/preview", markdown=text)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Preview (not saved)" in html and "Read every diff twice." in html
    assert Policy.select().count() == 1
    assert human.post("/policy/save", markdown=text).status_code == 303
    assert _flash(client) == "ok: Version 2 saved and active; the team has been told."
    assert shop.bob.get("/policy").json["playbook"] == "Read every diff twice."
    assert human.post("/policy/activate", version="1").status_code == 303
    assert shop.bob.get("/policy").json["version"] == 1
    worker.run()
    assert any("policy v1 is now active" in m["body"] for m in shop.bob.get("/mail").json)


def test_an_agent_cannot_take_the_human_role(make_agent, client):
    make_agent(project="shop", alias="alice")
    r = client.post("/v1/init", json={"project": "shop", "repo_origin": "git@github.com:acme/shop.git",
                                      "role": "human", "alias": "mallory"},
                    headers={"Authorization": f"Bearer {make_agent.keys['shop']}"})
    assert r.status_code == 422 and "kept for the people" in r.json["error"]["message"]
    key = {"Authorization": f"Bearer {make_agent.keys['shop']}"}
    r = client.put("/v1/workspaces/alice/role", json={"role": "human"}, headers=key)
    assert r.status_code == 422 and "belongs to the people" in r.json["error"]["message"]


# -- in a real browser -----------------------------------------------------------------------------

#: The issue's bound for a browser action to reach a waiting agent or another open page.
LIVE_WITHIN_MS = 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("acts-stack"), workers=2, env={"PYTHONPATH": str(ROOT)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def team(stack, tmp_path):
    """alice (creates the project; her machine has the key saved) and bob, each in a clone."""
    return two_agents(stack.url, tmp_path, "acts")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.csp_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_errors.append(m.text))
    yield page
    assert page.csp_errors == [], page.csp_errors  # our own pages never trip the policy
    context.close()


def login(page, wire, key: str) -> str:
    """Log in as a human through `wire dashboard --key`; returns the site's base URL."""
    link = wire.json("dashboard", "--key", key)
    page.goto(link["url"])
    page.click("#continue")
    assert re.search(r"/team$", page.url), page.url
    wait_live(page)
    return page.url.rsplit("/", 1)[0]


def wait_live(page) -> None:
    page.wait_for_selector("body[data-ws=open]", timeout=10_000)


def open_page(page, url: str):
    """Another tab of the same session on `url`, live."""
    other = page.context.new_page()
    other.goto(url)
    wait_live(other)
    return other


def banner_until(wire, text: str, seconds: float = 15) -> str:
    """`wire status`'s banner (stderr) once it shows `text` (the outbox worker delivers within moments)."""
    deadline, seen = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        seen += wire("status").stderr
        if text in seen:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never showed; banners were:\n{seen}")


@pytest.mark.slow
def test_browser_mail_shows_in_the_agents_banner_as_from_a_human(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    base = login(page, alice, key)
    page.goto(base + "/mail")
    wait_live(page)
    page.click("#send-mail summary")
    page.fill("#send-mail input[name=to]", "bob")
    page.fill("#send-mail input[name=subject]", "Stop the migration")
    page.fill("#send-mail textarea[name=body]", "Finance still reads that table.")
    page.click("#send-mail button[type=submit]")
    expect(page.locator("#flash")).to_have_text("Mail sent to bob.")
    expect(page.locator("main article.mail").first).to_contain_text("Stop the migration")
    banner_until(bob, "mail from dashboard (human): Stop the migration")


@pytest.mark.slow
def test_a_reply_typed_in_the_browser_wakes_a_blocked_chat_ask_within_a_second(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    base = login(page, alice, key)
    page.goto(base + "/chat")
    page.click("#start-chat summary")
    page.fill("#start-chat input[name=to]", "bob")
    page.fill("#start-chat textarea[name=body]", "Ask me here if you get stuck.")
    page.click("#start-chat button[type=submit]")
    expect(page.locator("#flash")).to_have_text("Sent to bob.")
    wait_live(page)
    ask = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "chat", "ask", "dashboard",
                            "sqlite or redis for the cache?", "--wait", "60"], cwd=bob.cwd, env=bob.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        expect(page.locator("ol.conversation")).to_contain_text("sqlite or redis for the cache?",
                                                                timeout=15_000)
        expect(page.locator("main .waiting")).to_contain_text("bob is waiting for dashboard")
        page.fill("#reply textarea[name=body]", "redis, with a 5 minute TTL")
        started = time.monotonic()
        page.click("#reply button[type=submit]")
        out, err = ask.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        ask.kill()
    assert ask.returncode == 0, (out, err)
    assert "redis, with a 5 minute TTL" in out
    # + 0.5: the process's exit
    assert took < LIVE_WITHIN_MS / 1000 + 0.5, f"the ask returned {took:.2f}s after the click"
    expect(page.locator("ol.conversation")).to_contain_text("redis, with a 5 minute TTL")


@pytest.mark.slow
def test_releasing_a_claim_in_the_browser_tells_the_holder_who_and_why(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    bead = bob.json("create", "Wire the checkout form")["id"]
    bob("claim", bead)
    base = login(page, alice, key)
    board = open_page(page, base + "/work")
    expect(board.locator("#col-in_progress article.card", has_text=bead)).to_be_visible()
    page.goto(base + "/work")
    page.locator("#col-in_progress a.ref", has_text=bead).click()
    page.fill("#release input[name=reason]", "bob is off sick; alice takes over")
    page.click("#release button[type=submit]")
    expect(page.locator("#flash")).to_contain_text(f"Released bob's claim on {bead}")
    expect(board.locator("#col-ready article.card", has_text=bead)).to_be_visible(timeout=LIVE_WITHIN_MS)
    banner_until(bob, f"notice: dashboard (human) released your claim on {bead}: "
                      "bob is off sick; alice takes over")
    alice("claim", bead)  # free for anyone


@pytest.mark.slow
def test_create_edit_and_close_a_bead_in_the_browser(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    base = login(page, alice, key)
    board = open_page(page, base + "/work")
    page.goto(base + "/work")
    page.click("#new-bead summary")
    page.fill("#new-bead input[name=title]", "Add a read cache")
    page.fill("#new-bead textarea[name=description]", "Orders are read 40x more than written.")
    page.select_option("#new-bead select[name=priority]", "1")
    page.fill("#new-bead input[name=labels]", "perf, db")
    page.click("#new-bead button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("Created ")
    ref = page.locator("h1 .ref").inner_text()
    expect(board.locator("#col-ready article.card", has_text=ref)).to_be_visible(timeout=LIVE_WITHIN_MS)
    shown = bob.json("show", ref)
    assert (shown["title"], shown["priority"], shown["labels"]) == ("Add a read cache", 1, ["perf", "db"])

    page.click("#edit summary")
    page.fill("#edit input[name=title]", "Add a read cache for orders")
    page.select_option("#edit select[name=priority]", "0")
    page.fill("#edit input[name=labels]", "perf, orders")
    page.click("#edit button[type=submit]")
    expect(page.locator("#flash")).to_have_text(f"Saved {ref}.")
    expect(page.locator("h1 .title")).to_have_text("Add a read cache for orders")
    card = board.locator("#col-ready article.card", has_text=ref)
    expect(card).to_contain_text("Add a read cache for orders", timeout=LIVE_WITHIN_MS)
    shown = bob.json("show", ref)
    assert (shown["title"], shown["priority"], shown["labels"]) == ("Add a read cache for orders", 0,
                                                                    ["perf", "orders"])

    page.fill("#close input[name=reason]", "done elsewhere")
    page.click("#close button[type=submit]")
    expect(page.locator("#flash")).to_have_text(f"Closed {ref}.")
    expect(board.locator("#col-closed article.card", has_text=ref)).to_be_visible(timeout=LIVE_WITHIN_MS)
    assert bob.json("show", ref)["status"] == "closed"
    page.click("#reopen button")
    expect(page.locator("#flash")).to_have_text(f"Reopened {ref}.")
    assert bob.json("show", ref)["status"] == "open"

    # bad input (past the browser's own check): the page says why, nothing changes
    page.click("#edit summary")
    page.evaluate("document.querySelector('#edit input[name=title]').removeAttribute('required')")
    page.fill("#edit input[name=title]", "")
    page.click("#edit button[type=submit]")
    expect(page.locator("#flash.error")).to_contain_text("title: Length must be between 1 and 1000.")
    assert bob.json("show", ref)["title"] == "Add a read cache for orders"


@pytest.mark.slow
def test_a_policy_edited_previewed_and_activated_in_the_browser_reaches_the_agents(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    base = login(page, alice, key)
    page.goto(base + "/policy")
    wait_live(page)
    page.click("#edit-policy summary")
    page.fill("#edit-policy textarea[name=markdown]",
              "# Invariants\n\nNever force-push main.\n\n"
              "# Role: developer\n\nRun the tests before you close a bead.")
    page.click("#preview-policy")
    expect(page.locator("#preview")).to_contain_text("Run the tests before you close a bead.")
    assert bob.json("policy")["version"] == 1  # a preview saves nothing
    page.click("#save-policy")
    expect(page.locator("#flash")).to_have_text("Version 2 saved and active; the team has been told.")
    assert "Run the tests before you close a bead." in bob.json("policy")["playbook"]
    page.locator('tr[data-version="1"] button', has_text="Activate").click()
    expect(page.locator("#flash")).to_have_text("Version 1 is active; the team has been told.")
    expect(page.locator('tr[data-version="1"]')).to_contain_text("(active)")
    banner_until(bob, "policy v1 is now active (was v2)")
    assert bob.json("policy")["version"] == 1


@pytest.mark.slow
def test_revoking_a_workspace_from_the_team_page_asks_first(team, page):
    from playwright.sync_api import expect

    alice, bob, key = team
    base = login(page, alice, key)
    page.locator('tr[data-alias="bob"] button', has_text="Revoke").click()
    expect(page.locator("main h1")).to_have_text("Revoke bob?")
    bob("status")  # not yet
    page.click("#confirm-revoke button")
    expect(page.locator("#flash")).to_contain_text("Revoked bob")
    assert page.url == base + "/team"
    assert "revoked" in bob("status", code=None).stderr.lower()
