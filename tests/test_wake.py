"""Wake on work and roles route work (issue 18), through the API and the store.

A bead that becomes ready is announced in the transaction of the change that made it ready
(`bead.ready` on the event stream, a notice to its subscribers and assignee); `watch` wakes for it,
`wait-ready` answers with it; a bead's role (`role:<name>` label) orders and, under the project's
scope "role", filters the ready list.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import _agent_factory, until_waiting

pytestmark = pytest.mark.atomic  # also on a real Redis server: watch and wait-ready block on streams


def events(kind: str = "bead.ready") -> list[tuple[str, dict]]:
    from store.models import Event

    rows = Event.select().where(Event.kind == kind).order_by(Event.id)
    return [(e.bead_ref, json.loads(e.data)) for e in rows]


def ready_refs(kind: str = "bead.ready") -> list[str]:
    return [ref for ref, _ in events(kind)]


def unblocked() -> list[dict]:
    """Payloads of the outbox's `bead.ready` rows of beads whose last blocker closed."""
    from store.models import Outbox

    queued = Outbox.select().where(Outbox.kind == "bead.ready").order_by(Outbox.id)
    rows = [json.loads(o.payload) for o in queued]
    return [p for p in rows if p["why"] == "unblocked"]


def unread(agent) -> list[dict]:
    return list(reversed(agent.get("/mail?unread=1").json))


@pytest.fixture
def team(make_agent):
    ana = make_agent(alias="ana", role="frontend")
    bob = make_agent(alias="bob", role="backend")
    cy = make_agent(alias="cy", role="coordinator")
    return ana, bob, cy


# -- bead.ready: when, and in which transaction ----------------------------------------------------

def test_closing_the_last_blocker_announces_the_dependent_and_not_before(team, worker):
    ana, _bob, _ = team
    first, second = ana.create("schema"), ana.create("migration")
    dep = ana.create("use it", blocked_by=[first, second])
    before = len(ready_refs())
    ana.post(f"/beads/{first}/close")
    assert ready_refs()[before:] == []  # still blocked by `second`
    ana.post(f"/beads/{second}/close")
    assert ready_refs()[before:] == [dep]
    _, data = events()[-1]
    assert data["why"] == "unblocked" and data["alias"] == "ana" and data["repo"] == "github.com/acme/shop"


def test_bead_ready_commits_with_the_close_or_not_at_all(app, team):
    from store import db
    from store.claims import close_bead
    from store.models import Bead, Workspace

    ana = team[0]
    blocker = ana.create("blocker")
    dep = ana.create("dependent", blocked_by=[blocker])
    db.connect()
    ws = Workspace.get(Workspace.alias == "ana")
    with pytest.raises(RuntimeError), db.transaction():
        close_bead(app.extensions["beadwire"], ws.project, ws, blocker)
        assert [p["bead"] for p in unblocked()] == [dep]  # written by the close, inside its transaction
        raise RuntimeError("the request failed after the close")
    assert unblocked() == []
    assert Bead.get(Bead.ref == blocker).status == "open"
    assert dep not in ready_refs()  # the audit row rolled back too


def test_release_reopen_and_creation_announce_a_bead_that_is_ready_after_them(team):
    ana, bob, _ = team
    created = ana.create("fresh work")
    assert ready_refs() == [created]
    blocked = ana.create("waits", blocked_by=[created])
    assert blocked not in ready_refs()  # created blocked: nothing to announce
    bob.post(f"/beads/{created}/claim")
    bob.delete(f"/beads/{created}/claim")
    bob.post(f"/beads/{created}/claim")
    bob.post(f"/beads/{created}/close")  # unblocks `blocked`
    ana.post(f"/beads/{created}/reopen")  # ready again, and `blocked` is blocked again
    parked = ana.create("parked")
    ana.patch(f"/beads/{parked}", {"status": "deferred"})
    ana.patch(f"/beads/{parked}", {"status": "open"})
    whys = [(ref, data["why"]) for ref, data in events()]
    assert whys == [(created, "created"), (created, "released"), (blocked, "unblocked"),
                    (created, "reopened"), (parked, "created"), (parked, "reset")]
    assert ana.get(f"/beads/{parked}").json["status"] == "open"


def test_subscribers_and_the_assignee_get_a_ready_notice_but_not_whoever_closed_the_blocker(team, worker):
    ana, bob, cy = team
    blocker = ana.create("api")
    dep = ana.create("page", blocked_by=[blocker])
    ana.patch(f"/beads/{dep}", {"assignee": "bob"})
    cy.post(f"/beads/{dep}/subscribe")
    ana.post(f"/beads/{dep}/subscribe")
    ana.post(f"/beads/{blocker}/claim")
    ana.post(f"/beads/{blocker}/close")
    worker.run()
    to_bob = [m for m in unread(bob) if m["data"].get("event") == "bead.ready"]
    to_cy = [m for m in unread(cy) if m["data"].get("event") == "bead.ready"]
    assert [(m["data"]["bead"], m["data"]["why"]) for m in to_bob] == [(dep, "assigned")]
    assert [(m["data"]["bead"], m["data"]["why"]) for m in to_cy] == [(dep, "subscribed")]
    assert f"{dep} is ready (its last blocker closed; assigned to you): page" == to_bob[0]["body"]
    assert not [m for m in unread(ana) if m["data"].get("event") == "bead.ready"]


def test_a_plain_watch_wakes_with_the_ready_notice_and_says_why(team, worker):
    ana, bob, _ = team
    blocker = ana.create("api")
    dep = ana.create("page", blocked_by=[blocker])
    bob.post(f"/beads/{dep}/subscribe")
    assert bob.get("/watch?timeout=0").json["items"] == []
    ana.post(f"/beads/{blocker}/close")
    worker.run()
    items = bob.get("/watch?timeout=1").json["items"]
    assert [(i["bead"], i.get("event"), i.get("why")) for i in items] == [(dep, "bead.ready", "subscribed")]


# -- roles -------------------------------------------------------------------------------------------

def test_a_role_is_a_label_set_on_create_and_replaced_or_removed_on_update(team):
    ana = team[0]
    ref = ana.create("button", role="frontend", labels=["ui"])
    assert ana.get(f"/beads/{ref}").json["labels"] == ["ui", "role:frontend"]
    ana.patch(f"/beads/{ref}", {"role": "backend"})
    assert ana.get(f"/beads/{ref}").json["labels"] == ["ui", "role:backend"]
    ana.patch(f"/beads/{ref}", {"role": ""})
    assert ana.get(f"/beads/{ref}").json["labels"] == ["ui"]
    bad = ana.patch(f"/beads/{ref}", {"role": "front end"})
    assert bad.status_code == 422 and "role" in bad.json["error"]["fields"]
    assert ana.post("/beads", {"title": "x", "role": "a/b"}).status_code == 422


def test_ready_lists_my_roles_beads_first_then_the_others_and_role_filters(team):
    ana, bob, _ = team
    api = ana.create("api", role="backend", priority=0)
    plain = ana.create("docs", priority=1)
    page = ana.create("page", role="frontend", priority=2)
    assert [b["id"] for b in ana.get("/ready").json] == [page, api, plain]
    assert [b["id"] for b in bob.get("/ready").json] == [api, plain, page]
    assert [b["id"] for b in ana.get("/ready?role=backend").json] == [api]
    assert [b["id"] for b in ana.get("/ready?role=FRONTEND").json] == [page]
    assert ana.get("/ready?role=a b").status_code == 422


def test_scope_role_shows_only_my_roles_beads_and_unroled_ones(team):
    ana, bob, cy = team
    api = ana.create("api", role="backend", priority=0)
    plain = ana.create("docs", priority=1)
    page = ana.create("page", role="frontend", priority=2)
    assert cy.patch("/project/settings", {"ready_scope": "role"}).status_code == 200
    assert [b["id"] for b in ana.get("/ready").json] == [page, plain]
    assert [b["id"] for b in bob.get("/ready").json] == [api, plain]
    assert [b["id"] for b in bob.get("/prime").json["ready"]] == [api, plain]


# -- watch --ready ---------------------------------------------------------------------------------

def test_watch_ready_gives_a_cursor_and_the_next_watch_from_it_misses_nothing(team):
    ana, bob, _ = team
    first = bob.get("/watch?timeout=0&ready=1").json
    assert first["ready"] == [] and first["items"] == [] and first["cursor"]
    new = ana.create("new work")  # between two watches
    second = bob.get(f"/watch?timeout=5&ready=1&cursor={first['cursor']}").json
    assert [(b["id"], b["why"]) for b in second["ready"]] == [(new, "created")]
    third = bob.get(f"/watch?timeout=0&ready=1&cursor={second['cursor']}").json
    assert third["ready"] == []  # shown once


def test_watch_ready_skips_beads_taken_since_and_other_repos(team, make_agent):
    ana, bob, _ = team
    other = make_agent(alias="ola", origin="git@github.com:acme/other.git")
    cursor = bob.get("/watch?timeout=0&ready=1").json["cursor"]
    taken = ana.create("gone already")
    ana.post(f"/beads/{taken}/claim")
    other.create("elsewhere")
    assert bob.get(f"/watch?timeout=0&ready=1&cursor={cursor}").json["ready"] == []


def test_watch_ready_follows_the_scope(team):
    ana, bob, cy = team
    cursor = ana.get("/watch?timeout=0&ready=1").json["cursor"]
    backend = bob.create("api", role="backend")
    shown = ana.get(f"/watch?timeout=0&ready=1&cursor={cursor}").json["ready"]
    assert [(b["id"], b["role"]) for b in shown] == [(backend, "backend")]  # scope all: any work wakes
    cy.patch("/project/settings", {"ready_scope": "role"})
    cursor = ana.get("/watch?timeout=0&ready=1").json["cursor"]
    bob.create("db", role="backend")
    mine = bob.create("form", role="frontend")
    plain = bob.create("readme")
    shown = ana.get(f"/watch?timeout=0&ready=1&cursor={cursor}").json["ready"]
    assert [b["id"] for b in shown] == [mine, plain]


def test_watch_ready_refuses_a_malformed_cursor(team):
    assert team[0].get("/watch?timeout=0&ready=1&cursor=yesterday").status_code == 422


# -- wait-ready ------------------------------------------------------------------------------------

def test_wait_ready_answers_at_once_when_the_bead_or_any_bead_is_ready(team):
    ana, bob, _ = team
    ref = ana.create("ready now", role="backend")
    started = time.monotonic()
    r = bob.get(f"/wait-ready?bead={ref}&timeout=20")
    assert r.status_code == 200 and r.json["ready"] is True and r.json["bead"]["id"] == ref
    any_ = bob.get("/wait-ready?timeout=20").json
    assert any_["ready"] is True and any_["bead"]["id"] == ref
    assert time.monotonic() - started < 5


def test_wait_ready_times_out_with_the_reasons_and_404s_an_unknown_bead(team):
    ana, bob, _ = team
    blocker = ana.create("blocker")
    ana.post(f"/beads/{blocker}/claim")
    dep = ana.create("dependent", blocked_by=[blocker])
    r = bob.get(f"/wait-ready?bead={dep}&timeout=0.2").json
    assert r["ready"] is False and r["bead"] is None
    assert r["reasons"] == [f"blocked by {blocker} (in_progress)"]
    assert bob.get("/wait-ready?bead=bd-nope&timeout=0").status_code == 404
    assert bob.get("/wait-ready?timeout=31").status_code == 422


def test_wait_ready_without_a_bead_waits_for_work_of_my_role_under_scope_role(team):
    ana, bob, cy = team
    cy.patch("/project/settings", {"ready_scope": "role"})
    ana.create("page", role="frontend")
    assert bob.get("/wait-ready?timeout=0.2").json["ready"] is False
    api = ana.create("api", role="backend")
    assert bob.get("/wait-ready?timeout=0.2").json["bead"]["id"] == api


@pytest.mark.real
def test_a_waiting_wait_ready_and_watch_wake_when_the_blocker_closes(real_app, real_redis):
    make = _agent_factory(real_app.test_client())
    ana, bob = make(alias="ana"), make(alias="bob")
    blocker = ana.create("blocker")
    dep = ana.create("dependent", blocked_by=[blocker])
    cursor = bob.get("/watch?timeout=0&ready=1").json["cursor"]
    answers: dict[str, tuple[float, dict]] = {}

    def wait(name: str, path: str) -> None:
        client = real_app.test_client()  # a client per thread, as separate processes would have
        r = client.get(f"/v1{path}", headers={"Authorization": f"Bearer {bob.token}"})
        answers[name] = (time.monotonic(), r.json)

    threads = [threading.Thread(target=wait, args=("wait", f"/wait-ready?bead={dep}&timeout=20"),
                                daemon=True),
               threading.Thread(target=wait, args=("watch", f"/watch?timeout=20&ready=1&cursor={cursor}"),
                                daemon=True)]
    for t in threads:
        t.start()
    until_waiting(real_redis, count=2)
    assert answers == {}  # both are waiting
    closed_at = time.monotonic()
    ana.post(f"/beads/{blocker}/close")
    for t in threads:
        t.join(15)
    assert answers["wait"][1]["ready"] is True and answers["wait"][1]["bead"]["id"] == dep
    assert [b["id"] for b in answers["watch"][1]["ready"]] == [dep]
    assert all(at - closed_at < 5 for at, _ in answers.values())


# -- what the CLI prints ---------------------------------------------------------------------------

def test_the_woke_line_says_why_in_one_line():
    from cli.watch import woke_line

    notice = {"kind": "notice", "bead": "bd-12", "event": "bead.ready", "why": "subscribed", "text": "..."}
    assert woke_line({"items": [notice], "waiting": []}) == "woke: bd-12 is ready (you subscribed)"
    assigned = {**notice, "why": "assigned"}
    mail = {"kind": "mail", "from": "ana", "subject": "hi"}
    assert woke_line({"items": [mail, assigned], "waiting": []}) == (
        "woke: bd-12 is ready (assigned to you) (+1 more)")
    work = {"id": "bd-7", "role": "frontend", "title": "x", "why": "created"}
    assert woke_line({"items": [], "waiting": [], "ready": [work]}) == (
        "woke: bd-7 is ready (new work, role:frontend)")
    assert woke_line({"items": [], "waiting": [{"alias": "bob", "seconds": 3}]}) == \
        "woke: bob is waiting for your reply"
    assert woke_line({"items": [mail], "waiting": []}) == "woke: mail from ana"
    hostile = {"id": "bd-1\x1b[2J", "role": None}
    assert "\x1b" not in woke_line({"ready": [hostile]})


def test_ready_rows_mark_other_roles_beads_but_not_mine_or_unroled_ones():
    from cli.beads import _bead_row

    def title(labels, mine="frontend"):
        return _bead_row({"id": "bd-1", "title": "T", "labels": labels}, False, mine)[-1]

    assert title(["role:backend", "ui"]) == "[role:backend] T"
    assert title(["role:Frontend"]) == "T" and title([]) == "T"
    assert title(["role:backend"], mine=None) == "T"  # no workspace: nothing to compare with


def test_a_sync_that_closes_the_blocker_in_the_file_announces_the_dependent(team, worker):
    ana, bob, _ = team

    def record(ref: str, status: str = "open", blocked_by: str | None = None) -> dict:
        deps = [{"issue_id": ref, "depends_on_id": blocked_by, "type": "blocks"}] if blocked_by else []
        return {"id": ref, "title": f"work {ref}", "status": status, "priority": 2, "issue_type": "task",
                "dependencies": deps}

    base = "\n".join(json.dumps(r) for r in (record("bd-s1"), record("bd-s2", blocked_by="bd-s1")))
    first = ana.sync(base, mode="incremental")
    assert first.status_code == 200, first.json
    assert [(ref, d["why"]) for ref, d in events()] == [("bd-s1", "synced")]  # bd-s2 waits for bd-s1
    bob.post("/beads/bd-s2/subscribe")
    closed = "\n".join(json.dumps(r)
                       for r in (record("bd-s1", "closed"), record("bd-s2", blocked_by="bd-s1")))
    second = ana.sync(closed, mode="full", base=base)  # bd-s1 closed in the file since the last sync
    assert second.status_code == 200, second.json
    assert [(ref, d["why"]) for ref, d in events()] == [("bd-s1", "synced"), ("bd-s2", "synced")]
    worker.run()
    notices = [m for m in unread(bob) if m["data"].get("event") == "bead.ready"]
    assert [m["data"]["bead"] for m in notices] == ["bd-s2"]


def test_routing_and_the_ready_announcement_hold_on_sqlite_and_postgresql(make_pg_agent):
    ana = make_pg_agent(alias="ana", role="frontend")
    cy = make_pg_agent(alias="cy", role="coordinator")
    api = ana.create("api", role="backend", priority=0)
    page = ana.create("page", role="frontend", priority=2)
    blocked = ana.create("after the page", blocked_by=[page])
    assert [b["id"] for b in ana.get("/ready").json] == [page, api]
    cy.patch("/project/settings", {"ready_scope": "role"})
    assert [b["id"] for b in ana.get("/ready").json] == [page]
    ana.post(f"/beads/{page}/close")
    assert [b["id"] for b in ana.get("/ready").json] == [blocked]
    assert ready_refs() == [api, page, blocked]
    assert ana.get(f"/wait-ready?bead={blocked}&timeout=0").json["ready"] is True
