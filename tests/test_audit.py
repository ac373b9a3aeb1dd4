"""The audit log (issue 17): every state change names who (alias or person, and the credential), what
(with before and after of edits), when and from where; no API edits or deletes entries; a year's
retention by default. On SQLite and PostgreSQL (rows commit with the change they record).
"""

from __future__ import annotations

import pytest

from store import db
from store.models import Audit
from store.util import now

pytestmark = pytest.mark.parametrize("redis", [pytest.param("real", marks=pytest.mark.real)], indirect=True)


@pytest.fixture
def crew(make_pg_agent):
    cora = make_pg_agent(alias="cora", role="coordinator")
    bob = make_pg_agent(alias="bob")
    return cora, bob, make_pg_agent.keys["shop"]


def as_key(agent, key, method, path, body=None):
    return agent.client.open(f"/v1{path}", method=method, json=body,
                             headers={"Authorization": f"Bearer {key}"})


def log(agent, query=""):
    r = agent.get(f"/audit{query}")
    assert r.status_code == 200, r.json
    return r.json


def test_a_claim_is_logged_with_who_the_credential_and_the_address(crew):
    cora, bob, _ = crew
    bead = bob.create("Fix login")
    bob.client.post(f"/v1/beads/{bead}/claim", json={}, headers={"Authorization": f"Bearer {bob.token}",
                                                                 "X-Wire-Host": "laptop-7"})
    [row] = log(cora, f"?action=claim&bead={bead}")
    assert (row["who"], row["who_kind"], row["credential"]) == ("bob", "agent", "workspace token")
    assert row["action"] == "claim.created" and row["bead"] == bead
    assert row["address"] == "127.0.0.1" and row["host"] == "laptop-7"


def test_an_edit_records_its_before_and_after_values(crew):
    cora, bob, _ = crew
    bead = bob.create("Fix login", priority=2)
    bob.patch(f"/beads/{bead}", {"title": "Fix the login page", "priority": 0})
    [row] = log(cora, f"?action=bead.updated&bead={bead}")
    assert row["detail"]["before"] == {"title": "Fix login", "priority": 2}
    assert row["detail"]["after"] == {"title": "Fix the login page", "priority": 0}


def test_human_actions_name_the_human_credential(crew):
    cora, bob, key = crew
    bead = bob.create("Fix login")
    as_key(cora, key, "POST", f"/beads/{bead}/assign", {"alias": "bob", "reason": "yours"})
    [row] = log(cora, "?action=bead.assigned")
    assert (row["who"], row["who_kind"], row["credential"]) == ("project key", "human", "project key")
    assert row["detail"]["after"] == {"assignee": "bob", "assigned_by": "project key", "reason": "yours"}
    assert row["detail"]["before"]["assignee"] == ""


def test_changes_without_an_event_are_logged_by_the_web_layer(crew):
    cora, bob, _ = crew
    assert bob.post("/handoffs", {"body": "tests pass; next: the docs"}).status_code == 201  # no outbox row
    rows = log(cora, "?who=bob")
    assert [r["action"] for r in rows] == ["POST /v1/handoffs"]
    assert rows[0]["detail"] == {"path": "/v1/handoffs"} and rows[0]["credential"] == "workspace token"


def test_a_refused_change_leaves_no_entry(crew):
    cora, bob, _ = crew
    bead = cora.create("Fix login")
    cora.post(f"/beads/{bead}/claim")
    before = len(log(cora, "?limit=10000"))
    assert bob.post(f"/beads/{bead}/claim").status_code == 409
    assert bob.patch(f"/beads/{bead}", {"priority": "urgent-ish"}).status_code == 422
    assert len(log(cora, "?limit=10000")) == before


def test_filters_and_the_newest_first_order(crew):
    cora, bob, _ = crew
    first, second = bob.create("one"), cora.create("two")
    rows = log(cora)
    assert [r["bead"] for r in rows if r["action"] == "bead.created"] == [second, first]
    assert {r["who"] for r in log(cora, "?who=bob")} == {"bob"}
    assert [r["bead"] for r in log(cora, f"?bead={first}")] == [first]
    assert len(log(cora, "?limit=1")) == 1
    assert log(cora, "?since=2999-01-01T00:00:00Z") == []
    assert len(log(cora, "?since=2000-01-01")) == len(rows)


def test_only_humans_and_coordinators_read_it_and_nobody_edits_it(crew):
    cora, bob, key = crew
    bob.create("one")
    r = bob.get("/audit")
    assert r.status_code == 403 and "audit log" in r.json["error"]["message"]
    assert as_key(cora, key, "GET", "/audit").status_code == 200
    for method in ("DELETE", "PATCH", "PUT", "POST"):
        assert as_key(cora, key, method, "/audit", {}).status_code == 405
    assert cora.get("/audit?since=yesterday").status_code == 422
    assert cora.get("/audit?limit=0").status_code == 422


def test_retention_keeps_a_year_by_default_and_is_configurable(crew, pg_app):
    from store.retention import purge_history

    _cora, bob, _ = crew
    bob.create("one")
    st = pg_app.extensions["beadwire"]
    assert st.settings.audit_days == 365
    with db.database.connection_context():
        count = Audit.select().count()
        oldest = Audit.select(Audit.id).order_by(Audit.id).limit(1)
        Audit.update(ts=now() - 300 * 86400).where(Audit.id == oldest).execute()
        assert purge_history(st)["audit"] == 0  # 300 days: kept
        st.settings = st.settings.with_(audit_days=200)
        assert purge_history(st)["audit"] == 1
        assert Audit.select().count() == count - 1


# -- the dashboard's audit page (the browser itself: tests/test_steer_e2e.py) -------------------------

def _dashboard(agent, bearer):
    from tests.test_dashboard import _login

    client = agent.client.application.test_client()
    _login(client, bearer)
    return client


def test_the_audit_page_filters_and_exports_csv_safe_for_spreadsheets(crew):
    import csv
    import io

    cora, bob, key = crew
    bead = bob.create("=HYPERLINK(\"http://evil.example\")")
    browser = _dashboard(cora, key)
    page = browser.get(f"/audit?who=bob&action=bead.created&bead={bead}").get_data(as_text=True)
    assert f">{bead}<" in page and "&lt;" not in page
    assert bead not in browser.get("/audit?who=cora").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(browser.get(f"/audit.csv?bead={bead}").get_data(as_text=True))))
    assert ([(r["who"], r["action"], r["credential"]) for r in rows]
            == [("bob", "bead.created", "workspace token")])
    exported = browser.get(f"/audit.json?bead={bead}").json
    assert [r["action"] for r in exported] == ["bead.created"]
    assert browser.get("/audit?since=2999-01-01T00:00").get_data(as_text=True).count('class="audit-row"') == 0
    assert browser.get("/audit?since=not-a-time").status_code == 422
    assert (cora.get("/audit?since=nan").status_code == 422
            and cora.get("/audit?since=1e400").status_code == 422)


def test_a_formula_in_agent_sent_text_is_defused_in_the_csv(crew):
    import csv
    import io

    cora, bob, key = crew
    bead = bob.create("x")
    bob.client.post(f"/v1/beads/{bead}/claim", json={}, headers={"Authorization": f"Bearer {bob.token}",
                                                                 "X-Wire-Host": "=HYPERLINK(\"http://evil\")"})
    text = _dashboard(cora, key).get("/audit.csv?action=claim.created").get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["host"] == "'=HYPERLINK(\"http://evil\")"  # a spreadsheet shows it as text, runs nothing
    assert log(cora, "?action=claim.created")[0]["host"] == "=HYPERLINK(\"http://evil\")"  # stored as sent


def test_a_mail_is_logged_once_by_its_route_in_its_own_transaction(crew, monkeypatch):
    cora, bob, _ = crew
    commits = []
    original = db.transaction

    def counted():
        commits.append(1)
        return original()

    monkeypatch.setattr(db, "transaction", counted)
    assert bob.post("/mail", {"to": "cora", "body": "ready for review"}).status_code == 201
    assert len(commits) == 1  # the message, its delivery, its outbox row and its audit row: one commit
    monkeypatch.undo()
    rows = log(cora, "?who=bob")
    assert [r["action"] for r in rows] == ["POST /v1/mail"]
    assert rows[0]["detail"] == {"path": "/v1/mail"} and rows[0]["credential"] == "workspace token"
    assert bob.post("/mail", {"to": "nobody", "body": "lost"}).status_code == 404
    assert len(log(cora, "?who=bob")) == 1


def test_a_chat_post_is_logged_once_by_its_route_in_its_own_transaction(crew, monkeypatch):
    cora, bob, _ = crew
    commits = []
    original = db.transaction

    def counted(*args, **kwargs):
        commits.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(db, "transaction", counted)
    assert bob.post("/chat", {"to": "cora", "body": "which port?", "wait": 60}).status_code == 201
    assert cora.post("/chat", {"to": "bob", "body": "8765"}).status_code == 201
    assert len(commits) == 2  # per post: the message, its delivery, its outbox row and its audit row
    monkeypatch.undo()
    for who, alias in ((bob, "bob"), (cora, "cora")):
        rows = log(cora, f"?who={alias}&action=POST")
        assert [r["action"] for r in rows] == ["POST /v1/chat"], who
        assert rows[0]["detail"] == {"path": "/v1/chat"} and rows[0]["credential"] == "workspace token"
    assert bob.post("/chat", {"to": "nobody", "body": "lost"}).status_code == 404
    assert len(log(cora, "?who=bob&action=POST")) == 1
