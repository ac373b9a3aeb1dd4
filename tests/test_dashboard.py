"""The dashboard through the Flask test client: logins, sessions, CSRF, tenancy, escaping, headers,
every page, and the events the activity feed relies on. The browser tests are in
tests/test_dashboard_browser.py; the websocket feed on a real server is in tests/test_dashboard_ws.py.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from store import dashboard, sessions
from store.models import Bead, Escalation

XSS = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
PAGES = ("/team", "/work", "/work/graph", "/chat", "/mail", "/escalations", "/activity", "/policy")


def _key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _link(client, bearer: str) -> dict:
    r = client.post("/v1/dashboard/link", headers=_key(bearer), json={})
    assert r.status_code == 201, r.json
    return r.json


def redeem(client, path: str):
    """Open a login link (a page with a button) and press the button; returns the POST's answer."""
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post(path, data={"csrf_token": token})


def _login(client, bearer: str) -> None:
    r = redeem(client, _link(client, bearer)["path"])
    assert r.status_code == 303 and r.headers["Location"].endswith("/team")


def _csrf(client, path: str = "/escalations") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _events(app, project_id: int, kind: str) -> list[dict]:
    st = app.extensions["beadwire"]
    rows = [fields for _, fields in st.redis.client.xrange(st.redis.keys.events_key(project_id))]
    return [json.loads(r["data"]) for r in rows if r["kind"] == kind]


@pytest.fixture
def shop(make_agent):
    alice = make_agent(project="shop", alias="alice", human="Alice")
    bob = make_agent(project="shop", alias="bob", role="reviewer")
    return SimpleNamespace(alice=alice, bob=bob, key=make_agent.keys["shop"], id=alice.info["project"]["id"])


def escalate(agent, **fields) -> dict:
    body = {"subject": "Drop the legacy table?", "situation": "Migration 42 needs it gone.",
            "options": ["A: drop it", "B: keep it"], **fields}
    r = agent.post("/escalations", body)
    assert r.status_code == 201, r.json
    return r.json


# -- logging in ------------------------------------------------------------------------------------

def test_a_login_link_works_once_and_sets_an_httponly_samesite_cookie(shop, client):
    link = _link(client, shop.key)
    assert link["access"] == "human" and link["path"].startswith("/login/") and link["project"] == "shop"
    shown = client.get(link["path"])  # what a link preview or mail scanner fetches: nothing is used up
    assert shown.status_code == 200 and "Continue to the dashboard" in shown.get_data(as_text=True)
    assert "bw_session=" not in shown.headers.get("Set-Cookie", "")
    r = redeem(client, link["path"])
    assert r.status_code == 303 and r.headers["Location"].endswith("/team")
    cookie = r.headers["Set-Cookie"]
    assert ("bw_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
            and "Path=/" in cookie)
    assert client.get("/team").status_code == 200
    client.delete_cookie("bw_session")
    again = client.get(link["path"])
    assert again.status_code == 401 and "unknown, used or expired" in again.get_data(as_text=True)
    assert client.get("/team").status_code == 302


def test_using_a_link_needs_the_login_forms_csrf_token(shop, client):
    link = _link(client, shop.key)
    assert client.post(link["path"], data={}).status_code == 403  # another site's form: no token
    assert client.get("/team").status_code == 302
    assert redeem(client, link["path"]).status_code == 303  # not used up by the refused attempt


def test_a_forged_or_malformed_link_is_refused(shop, client):
    for token in ("1.notarealsecretnotarealsecret", "abc", "999999.xxxxxxxxxxxxxxxxxxxxxxxxxxx"):
        assert client.get(f"/login/{token}").status_code == 401


def test_minting_a_link_needs_a_token_of_the_project(client):
    assert client.post("/v1/dashboard/link", json={}).status_code == 401
    assert client.post("/v1/dashboard/link", headers=_key("bw_ws_forged"), json={}).status_code == 401


def test_a_logged_out_browser_gets_the_login_page(shop, client):
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 302 and "/login?next=" in r.headers["Location"], path
    page = client.get("/login?next=/mail")
    assert page.status_code == 200 and 'name="key"' in page.get_data(as_text=True)
    assert client.get("/team", headers={"X-Fragment": "1"}).status_code == 401  # the live script reloads
    assert client.post("/logout").status_code == 401


def test_the_project_key_logs_in_through_the_form_which_carries_a_csrf_token(shop, client):
    client.get("/login")
    token = client.get_cookie("bw_login_csrf", path="/login").value
    assert client.post("/login", data={"key": shop.key}).status_code == 403  # no token: refused
    bad = client.post("/login", data={"key": "bw_pk_wrong", "csrf_token": token})
    assert bad.status_code == 401 and client.get("/team").status_code == 302
    r = client.post("/login", data={"key": shop.key, "csrf_token": token, "next": "/mail"})
    assert r.status_code == 303 and r.headers["Location"] == "/mail"
    assert client.get("/mail").status_code == 200


def test_the_next_address_never_leaves_the_site(shop, client):
    client.get("/login")
    token = client.get_cookie("bw_login_csrf", path="/login").value
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = client.post("/login", data={"key": shop.key, "csrf_token": token, "next": evil})
        assert r.headers["Location"] == "/team", evil


def test_a_next_address_with_a_tab_or_line_break_does_not_become_another_host(shop, client):
    # browsers drop tabs and line breaks from URLs: `/<tab>/evil.example` is `//evil.example` to them
    client.get("/login")
    token = client.get_cookie("bw_login_csrf", path="/login").value
    for evil in ("/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\x00/evil.example",
                 "/ /evil"):
        r = client.post("/login", data={"key": shop.key, "csrf_token": token, "next": evil})
        assert r.status_code == 303 and r.headers["Location"] == "/team", (evil, r.headers["Location"])
    raw = client.post("/login", data=f"key={shop.key}&csrf_token={token}&next=/%09/evil.example",
                      content_type="application/x-www-form-urlencoded")
    assert raw.headers["Location"] == "/team"
    page = client.get("/login?next=/%09/evil.example").get_data(as_text=True)
    assert 'name="next" value="/team"' in page


def test_a_workspace_token_mints_a_read_only_session(shop, client, app):
    link = _link(client, shop.bob.token)
    assert link["access"] == "viewer"
    redeem(client, link["path"])
    esc = escalate(shop.bob)
    html = client.get("/escalations").get_data(as_text=True)
    assert "Drop the legacy table?" in html and "/answer" not in html and "can read only" in html
    r = client.post(f"/escalations/{esc['id']}/answer",
                    data={"csrf_token": _csrf(client), "response": "A: drop it"})
    assert r.status_code == 403
    assert Escalation.get_by_id(esc["id"]).status == "pending"


def test_a_read_only_session_reads_private_things_as_its_workspace_would(shop, make_agent, client):
    carol = make_agent(project="shop", alias="carol")
    shop.alice.post("/mail", {"to": "carol", "subject": "alice-to-carol", "body": "secret plan"})
    shop.alice.post("/mail", {"to": "bob", "subject": "alice-to-bob", "body": "hello bob"})
    carol.post("/chat", {"to": "alice", "body": "carol-alice chat"})
    shop.bob.post("/chat", {"to": "alice", "body": "bob-alice chat"})
    theirs = escalate(shop.alice, subject="alice asks the humans")
    _login(client, shop.bob.token)  # bob is a reviewer: not a coordinator
    mail = client.get("/mail").get_data(as_text=True)
    assert "alice-to-bob" in mail and "alice-to-carol" not in mail and "secret plan" not in mail
    chat = client.get("/chat").get_data(as_text=True)
    assert "bob-alice chat" in chat and "carol-alice chat" not in chat
    thread = f"c:{min(shop.alice.info['workspace']['id'], carol.info['workspace']['id'])}:" \
             f"{max(shop.alice.info['workspace']['id'], carol.info['workspace']['id'])}"
    assert client.get(f"/chat/{thread}").status_code == 404
    assert "alice asks the humans" not in client.get("/escalations").get_data(as_text=True)
    activity = client.get("/activity").get_data(as_text=True)
    assert ("secret plan" not in activity and "alice-to-carol" not in activity
            and "carol-alice chat" not in activity)
    assert "alice asks the humans" not in activity and f"escalation #{theirs['id']}" not in activity
    assert "alice-to-bob" in activity and "joined as" in activity  # its own mail and the public facts show


def test_logging_out_ends_the_session_everywhere(shop, client):
    _login(client, shop.key)
    cookie = client.get_cookie("bw_session").value
    assert client.post("/logout", data={"csrf_token": _csrf(client)}).status_code == 303
    other = client.application.test_client()
    other.set_cookie("bw_session", cookie)
    assert other.get("/team").status_code == 302


def test_sessions_expire_when_idle_and_after_their_longest_life(shop, client, app, monkeypatch):
    _login(client, shop.key)
    st = app.extensions["beadwire"]
    (key,) = st.redis.client.keys("*:session:*")
    assert 0 < st.redis.client.ttl(key) <= sessions.DEFAULT_SESSION_IDLE
    monkeypatch.setattr(sessions, "DEFAULT_SESSION_MAX", -1)
    assert client.get("/team").status_code == 302
    assert st.redis.client.keys("*:session:*") == []


# -- CSRF, tenancy, escaping, headers -----------------------------------------------------------------

def test_forms_without_the_sessions_csrf_token_are_refused(shop, client):
    _login(client, shop.key)
    esc = escalate(shop.alice)
    for data in ({"response": "A: drop it"}, {"response": "A: drop it", "csrf_token": "guess"}):
        assert client.post(f"/escalations/{esc['id']}/answer", data=data).status_code == 403
    cross = client.post(f"/escalations/{esc['id']}/answer", headers={"Origin": "https://evil.example"},
                        data={"response": "A", "csrf_token": _csrf(client)})
    assert cross.status_code == 403
    assert Escalation.get_by_id(esc["id"]).status == "pending"


def test_an_answer_from_the_dashboard_reaches_the_agents_banner(shop, client, worker):
    _login(client, shop.key)
    esc = escalate(shop.alice)
    r = client.post(f"/escalations/{esc['id']}/answer",
                    data={"csrf_token": _csrf(client), "response": "B: keep it", "note": "finance reads it"})
    assert r.status_code == 303
    worker.run()
    banner = json.loads(shop.alice.get("/whoami").headers["X-Wire-Banner"])
    assert banner["new"][0]["text"].startswith(f"escalation #{esc['id']} answered by project key: B: keep it")
    assert "Nothing pending" in client.get("/escalations").get_data(as_text=True)


def test_free_text_answers_and_empty_ones(shop, client):
    _login(client, shop.key)
    esc = escalate(shop.alice)
    empty = client.post(f"/escalations/{esc['id']}/answer", data={"csrf_token": _csrf(client), "text": "  "})
    assert empty.status_code == 422 and Escalation.get_by_id(esc["id"]).status == "pending"
    client.post(f"/escalations/{esc['id']}/answer",
                data={"csrf_token": _csrf(client), "text": "do C instead"})
    assert Escalation.get_by_id(esc["id"]).response == "do C instead"
    twice = client.post(f"/escalations/{esc['id']}/answer",
                        data={"csrf_token": _csrf(client), "text": "again"})
    assert twice.status_code == 409 and "answered already" in twice.get_data(as_text=True)


def test_another_projects_dashboard_is_never_visible(shop, make_agent, client):
    eve = make_agent(project="other", alias="eve-secret", origin="git@github.com:evil/other.git")
    theirs = eve.create("their secret bead")
    pk = Bead.get(Bead.ref == theirs).id
    eve.post("/mail", {"to": "eve-secret", "body": "other project's mail"})
    _login(client, shop.key)
    assert client.get(f"/work/bead/{pk}").status_code == 404
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        assert ("eve-secret" not in html and "their secret bead" not in html
                and "other project" not in html), path


def test_agent_text_renders_as_text_on_every_page(shop, client, app):
    ref = shop.alice.create(XSS, description=XSS)
    shop.alice.post(f"/beads/{ref}/comments", {"text": XSS})
    shop.alice.post(f"/beads/{ref}/claim")
    shop.alice.post("/mail", {"to": "bob", "subject": XSS, "body": XSS})
    shop.alice.post("/chat", {"to": "bob", "body": XSS})
    escalate(shop.alice, subject=XSS, situation=XSS, options=[XSS])
    _login(client, shop.key)
    pk = Bead.get(Bead.ref == ref).id
    chat = client.get("/chat").get_data(as_text=True)
    thread = re.search(r'href="/chat/(c:\d+:\d+)"', chat).group(1)
    for path in (*PAGES, f"/work/bead/{pk}", f"/chat/{thread}"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, path  # no inline script at all


def test_every_page_sends_a_strict_content_security_policy(shop, client):
    _login(client, shop.key)
    for path in (*PAGES, "/login", "/static/dashboard.js", "/static/dashboard.css"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp and r.headers["X-Content-Type-Options"] == "nosniff"
        html = r.get_data(as_text=True)
        r.close()
        assert " style=" not in html and "<style" not in html, path  # inline styles would be blocked
    assert client.get("/team").headers["Cache-Control"] == "no-store"


# -- the pages show what agents do -----------------------------------------------------------------------

def test_the_pages_show_claims_beads_mail_chat_escalations_and_policy(shop, client, app):
    first = shop.alice.create("Schema migration", priority=1)
    second = shop.alice.create("API endpoint", blocked_by=[first])
    shop.alice.post(f"/beads/{first}/claim")
    shop.alice.post("/locks", {"paths": ["src/db/"], "reason": "migrating"})
    shop.alice.post("/mail", {"to": "bob", "subject": "review please", "body": "PR 7 is up"})
    shop.bob.post("/chat", {"to": "alice", "body": "which branch?", "wait": 60})
    escalate(shop.alice)
    _login(client, shop.key)
    team = client.get("/team").get_data(as_text=True)
    assert "alice" in team and "Schema migration" in team and "src/db/**" in team and "online" in team
    work = client.get("/work").get_data(as_text=True)
    in_progress = work.split('id="col-in_progress"')[1].split('id="col-blocked"')[0]
    assert "Schema migration" in in_progress and "held by <b>alice</b>" in in_progress
    assert "API endpoint" in work.split('id="col-blocked"')[1].split('id="col-closed"')[0]
    bead = client.get(f"/work/bead/{Bead.get(Bead.ref == second).id}").get_data(as_text=True)
    assert "<svg" in bead and first in bead and "blocked by" in bead
    assert "Schema migration" in client.get("/work/graph").get_data(as_text=True)
    assert "review please" in client.get("/mail").get_data(as_text=True)
    chat = client.get("/chat").get_data(as_text=True)
    assert "which branch?" in chat and "<b>bob</b> is waiting for <b>alice</b>" in chat
    assert "Drop the legacy table?" in client.get("/escalations").get_data(as_text=True)
    activity = client.get("/activity").get_data(as_text=True)
    for kind in ("claim.created", "mail", "chat", "reservation.created", "escalation.created",
                 "presence.online"):
        assert f'<span class="kind">{kind}</span>' in activity, kind
    claims_only = client.get("/activity?group=claims").get_data(as_text=True)
    assert "claim.created" in claims_only and '<span class="kind">mail</span>' not in claims_only
    assert "Invariants" in client.get("/policy").get_data(as_text=True)


def test_bad_filters_are_a_clear_4xx(shop, client):
    _login(client, shop.key)
    for path in ("/team?page=0", "/team?status=sleeping", "/work?priority=9", "/mail?page=x",
                 "/activity?group=nope"):
        assert client.get(path).status_code == 422, path
    for path in ("/work?q=&repo=0&priority=&holder=&type=", "/team?q=&status=&role=&repo=0", "/mail?q=&x=1",
                 "/activity?group=&alias="):
        assert client.get(path).status_code == 200, path  # the filter forms as submitted with "any"
    assert client.get("/chat/not-a-thread").status_code == 404
    assert client.get("/chat/c:1:99999").status_code == 404


def test_the_team_page_is_paginated(shop, make_agent, client):
    for i in range(dashboard.TEAM_PAGE + 5):
        make_agent(project="shop", alias=f"agent{i:03d}")
    _login(client, shop.key)
    first = client.get("/team").get_data(as_text=True)
    assert first.count('class="ws ') == dashboard.TEAM_PAGE and "page 1 of 2" in first
    second = client.get("/team?page=2").get_data(as_text=True)
    assert second.count('class="ws ') == 7


# -- events for the activity feed -------------------------------------------------------------------------

def test_presence_changes_are_events(shop, app):
    st = app.extensions["beadwire"]
    shop.alice.get("/whoami")
    shop.bob.get("/whoami")
    assert [e["alias"] for e in _events(app, shop.id, "presence.online")] == ["alice", "bob"]
    shop.alice.get("/whoami")  # still online: no new event
    assert len(_events(app, shop.id, "presence.online")) == 2
    st.redis.prune_presence(shop.id, before=9e12)
    assert sorted(e["alias"] for e in _events(app, shop.id, "presence.offline")) == ["alice", "bob"]
    shop.alice.get("/whoami")  # back
    assert [e["alias"] for e in _events(app, shop.id, "presence.online")] == ["alice", "bob", "alice"]


def test_explicit_reservations_are_events(shop, app):
    shop.alice.post("/locks", {"paths": ["src/api.py"], "reason": "refactor"})
    shop.alice.client.delete("/v1/locks", json={"all": True}, headers=shop.alice._h())
    (made,) = _events(app, shop.id, "reservation.created")
    (gone,) = _events(app, shop.id, "reservation.released")
    assert (made["alias"] == "alice" and made["patterns"] == ["src/api.py"]
            and gone["patterns"] == ["src/api.py"])


def test_automatic_reservations_are_events_when_they_change(shop, app):
    def modified(*paths: str) -> None:
        headers = {**shop.alice._h(), "X-Wire-Changed": json.dumps(list(paths))}
        assert shop.alice.client.get("/v1/whoami", headers=headers).status_code == 200

    modified("src/a.py", "src/b.py")
    modified("src/a.py", "src/b.py")  # the next command: renewed, not announced again
    modified("src/b.py")
    made = _events(app, shop.id, "reservation.created")
    gone = _events(app, shop.id, "reservation.released")
    assert ([(e["alias"], e["patterns"], e["auto"]) for e in made]
            == [("alice", ["src/a.py", "src/b.py"], True)])
    assert [(e["alias"], e["patterns"], e["auto"]) for e in gone] == [("alice", ["src/a.py"], True)]


def test_login_and_session_keys_carry_the_project_hash_tag():
    from store.keys import Keys

    keys = Keys("bw")
    assert keys.login_key(3, "ab12") == "bw:{p:3}:login:ab12"
    assert keys.session_key(3, "ab12") == "bw:{p:3}:session:ab12"


def test_every_page_renders_on_sqlite_and_postgresql(make_pg_agent, pg_client):
    alice = make_pg_agent(project="shop", alias="alice")
    bob = make_pg_agent(project="shop", alias="bob")
    first = alice.create("Schema migration")
    second = alice.create("Orders API", blocked_by=[first])
    bob.post(f"/beads/{first}/claim")
    alice.post("/mail", {"to": "bob", "subject": "hello", "body": "PR is up"})
    bob.post("/chat", {"to": "alice", "body": "which branch?"})
    escalate(alice)
    _login(pg_client, make_pg_agent.keys["shop"])
    pk = Bead.get(Bead.ref == second).id
    for path in (*PAGES, f"/work/bead/{pk}", "/mail?q=PR", "/work?q=orders&priority=2"):
        r = pg_client.get(path)
        assert r.status_code == 200, (path, r.get_data(as_text=True)[:500])
    assert "Orders API" in pg_client.get("/work?q=orders").get_data(as_text=True)


def test_rotating_the_key_or_revoking_the_viewer_ends_sessions(shop, client, app):
    from store.models import Project, Workspace

    _login(client, shop.key)
    viewer = app.test_client()
    _login(viewer, shop.bob.token)
    Workspace.update(revoked=True).where(Workspace.alias == "bob").execute()
    assert viewer.get("/team").status_code == 302 and client.get("/team").status_code == 200
    Project.update(key_hash="0" * 64).where(Project.id == shop.id).execute()
    r = client.get("/team")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_login_link_made_before_a_key_rotation_no_longer_logs_in(shop, client):
    human, viewer = _link(client, shop.key), _link(client, shop.bob.token)
    client.get(human["path"])  # opened (the page with its button, and the form's CSRF cookie) before
    csrf = client.get_cookie("bw_login_csrf", path="/login").value
    rotated = client.post("/v1/project/key/rotate", headers=_key(shop.key), json={})
    assert rotated.status_code == 200
    for link in (human, viewer):
        assert client.get(link["path"]).status_code == 401
        r = client.post(link["path"], data={"csrf_token": csrf})
        assert r.status_code == 401 and "rotated" in r.get_data(as_text=True)
        assert client.get("/team").status_code == 302  # no session came of it
    _login(client, rotated.json["project_key"])  # a link made with the new key works
    assert client.get("/team").status_code == 200


def test_a_group_mail_names_every_recipient_in_the_feed(shop, make_agent, client):
    make_agent(project="shop", alias="carol")
    shop.alice.post("/mail", {"to": "bob,carol", "subject": "standup", "body": "at ten"})
    _login(client, shop.key)
    assert "mail to bob, carol: standup" in client.get("/activity").get_data(as_text=True)


def test_a_sync_is_one_activity_line_and_a_mass_change_stands_out_with_the_lost_value_in_bead_history(
        shop, client):
    lines = [json.dumps({"id": f"bd-{i}", "title": f"Bead {i}", "status": "open",
                         "updated_at": "2026-01-01T00:00:00Z"})
             for i in range(40)]
    base = "\n".join(lines)
    shop.alice.sync(base)
    shop.alice.patch("/beads/bd-39", {"title": "Server title"})
    edited = [*lines[:9], lines[39].replace("Bead 39", "File title")]  # 30 gone, one edited on both sides
    r = shop.alice.sync("\n".join(edited), base=base, allow_delete=True)
    assert r.json["tombstoned"] == 30 and r.json["mass"] is True
    _login(client, shop.key)
    activity = client.get("/activity?group=beads").get_data(as_text=True)
    quiet, mass = re.findall(r'<li class="ev k-beads-synced( mass)?"', activity)[::-1][:2]
    assert (quiet, mass) == ("", " mass")  # the import is an ordinary line, the deletion stands out
    assert f"MASS CHANGE: sync #{r.json['sync']} of github.com/acme/shop: 30 tombstoned, 1 pulled, " \
           "1 conflicts" in activity
    page = client.get(f"/work/bead/{Bead.get(Bead.ref == 'bd-39').id}").get_data(as_text=True)
    assert "bead.sync_conflict" in page and "not File title" in page
