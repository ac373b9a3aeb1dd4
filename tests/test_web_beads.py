"""Beads over HTTP: create, show, list, update, comment, link, deps, close, reopen, ready, search."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

SHOP = "git@github.com:acme/shop.git"
API = "git@github.com:acme/api.git"


def ids(beads):
    return [b["id"] for b in beads]


def record(bead_id, **fields):
    return json.dumps({"id": bead_id, "title": bead_id, "status": "open", "priority": 2, "issue_type": "task",
                       "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", **fields})


# -- create and show ------------------------------------------------------------------------

def test_a_new_bead_is_open_unclaimed_and_shown_as_created(make_agent):
    ana = make_agent(alias="ana")
    r = ana.post("/beads", {"title": "Fix login", "description": "The button does nothing",
                            "issue_type": "bug", "labels": ["auth", "ui"], "priority": 1})
    assert r.status_code == 201
    shown = ana.get(f"/beads/{r.json['id']}")
    assert shown.status_code == 200
    bead = shown.json
    assert bead["id"] == r.json["id"]
    assert (bead["title"], bead["description"], bead["issue_type"]) == (
        "Fix login", "The button does nothing", "bug")
    assert (bead["status"], bead["priority"], bead["labels"]) == ("open", 1, ["auth", "ui"])
    assert bead["repo"] == "github.com/acme/shop"
    assert bead["claim"] is None
    assert bead["comments"] == [] and bead["dependencies"] == []
    assert bead["created_at"]


def test_new_beads_get_the_repo_prefix_and_distinct_ids(make_agent):
    ana = make_agent()
    made = [ana.create(f"task {n}") for n in range(20)]
    assert len(set(made)) == 20
    assert all(bead_id.startswith("bd-") for bead_id in made)


@pytest.mark.parametrize("given, stored", [
    (0, 0), (4, 4), ("P1", 1), ("p3", 3), ("0", 0), ("critical", 0), ("high", 1), ("medium", 2), ("low", 3),
    ("backlog", 4), ("HIGH", 1),
])
def test_priority_accepts_numbers_p_levels_and_words(make_agent, given, stored):
    ana = make_agent()
    bead_id = ana.create("Something", priority=given)
    assert ana.get(f"/beads/{bead_id}").json["priority"] == stored


def test_priority_defaults_to_medium(make_agent):
    ana = make_agent()
    assert ana.get(f"/beads/{ana.create('Something')}").json["priority"] == 2


@pytest.mark.parametrize("bad", [5, -1, "P7", "urgent", 1.5, "", None, [1], {"p": 1}, True])
def test_a_bad_priority_is_refused_with_a_message(make_agent, bad):
    ana = make_agent()
    r = ana.post("/beads", {"title": "Something", "priority": bad})
    assert r.status_code == 422
    assert r.json["error"]["code"] == "invalid"
    assert "priority" in r.json["error"]["message"]
    assert ana.get("/beads?all=1").json == []


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_title_is_refused_on_create_and_update(make_agent, blank):
    ana = make_agent()
    r = ana.post("/beads", {"title": blank})
    assert r.status_code == 422 and r.json["error"]["message"] == "invalid input: title: must not be blank"
    assert ana.get("/beads?all=1").json == []
    bead = ana.create("Named")
    r = ana.patch(f"/beads/{bead}", {"title": blank})
    assert r.status_code == 422 and "title: must not be blank" in r.json["error"]["message"]
    assert ana.get(f"/beads/{bead}").json["title"] == "Named"


def test_an_unknown_bead_is_not_found(make_agent):
    ana = make_agent()
    r = ana.get("/beads/bd-nope")
    assert r.status_code == 404
    assert r.json["error"]["code"] == "not_found"


# -- list --------------------------------------------------------------------------------------

@pytest.fixture
def board(make_agent):
    """ana's board: a bug, a labelled task, a claimed task, a closed task, an epic (empty)."""
    ana = make_agent(alias="ana")
    bug = ana.create("Crash on save", issue_type="bug", labels=["ui"])
    task = ana.create("Write docs", labels=["docs", "ui-kit"])
    taken = ana.create("Refactor cart")
    ana.post(f"/beads/{taken}/claim")
    done = ana.create("Old chore")
    ana.post(f"/beads/{done}/close", {"reason": "done"})
    return ana, {"bug": bug, "task": task, "taken": taken, "done": done}


def test_the_list_hides_closed_beads_unless_asked(board):
    ana, b = board
    assert set(ids(ana.get("/beads").json)) == {b["bug"], b["task"], b["taken"]}
    assert set(ids(ana.get("/beads?all=1").json)) == {b["bug"], b["task"], b["taken"], b["done"]}
    assert ids(ana.get("/beads?status=closed").json) == [b["done"]]


def test_the_list_filters_by_status_type_label_and_assignee(board):
    ana, b = board
    assert ids(ana.get("/beads?status=in_progress").json) == [b["taken"]]
    assert ids(ana.get("/beads?type=bug").json) == [b["bug"]]
    # labels match exactly: "ui" is not "ui-kit"
    assert ids(ana.get("/beads?label=ui").json) == [b["bug"]]
    assert ids(ana.get("/beads?label=ui-kit").json) == [b["task"]]
    assert ids(ana.get("/beads?label=u").json) == []
    # claiming makes the claimer the assignee
    assert ids(ana.get("/beads?assignee=ana").json) == [b["taken"]]
    assert ana.get("/beads?assignee=bob").json == []


def test_the_list_filters_by_one_priority_or_a_range(make_agent):
    ana = make_agent()
    made = {p: ana.create(f"P{p} work", priority=p) for p in range(5)}
    assert ids(ana.get("/beads?priority=P1").json) == [made[1]]
    assert ids(ana.get("/beads?priority=1").json) == [made[1]]
    assert ids(ana.get("/beads?priority=high").json) == [made[1]]
    assert ids(ana.get("/beads?priority=0-1").json) == [made[0], made[1]]
    assert ids(ana.get("/beads?priority=P0-P2").json) == [made[0], made[1], made[2]]
    assert ids(ana.get("/beads?priority=p3-p4&status=open").json) == [made[3], made[4]]


@pytest.mark.parametrize("bad", ["P9", "urgent", "2-1", "0-1-2", "-", "1-", "P"])
def test_a_bad_priority_filter_is_refused_with_a_message(make_agent, bad):
    ana = make_agent()
    r = ana.get(f"/beads?priority={bad}")
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid"
    assert "priority" in r.json["error"]["message"] and repr(bad) in r.json["error"]["message"]


def test_the_list_filters_by_repo(make_agent):
    ana = make_agent(alias="ana", origin=SHOP)
    bob = make_agent(alias="bob", origin=API)
    mine, theirs = ana.create("shop work"), bob.create("api work")
    assert set(ids(ana.get("/beads").json)) == {mine, theirs}
    assert ids(ana.get("/beads?repo=api").json) == [theirs]
    assert ids(ana.get("/beads?repo=github.com/acme/shop").json) == [mine]
    assert ana.get("/beads?repo=nowhere").json == []


def test_the_list_shows_who_holds_each_bead(board):
    ana, b = board
    by_id = {bead["id"]: bead for bead in ana.get("/beads").json}
    assert by_id[b["taken"]]["claim"]["alias"] == "ana"
    assert by_id[b["bug"]]["claim"] is None


# -- update and comment -------------------------------------------------------------------------

def test_update_changes_the_fields_and_labels(make_agent):
    ana = make_agent()
    bead_id = ana.create("Draft", labels=["old", "keep"])
    before = ana.get(f"/beads/{bead_id}").json
    r = ana.patch(f"/beads/{bead_id}", {"title": "Final", "priority": "P0", "description": "now with text",
                                        "assignee": "bob", "add_labels": ["new", "keep"],
                                        "remove_labels": ["old"]})
    assert r.status_code == 200
    after = ana.get(f"/beads/{bead_id}").json
    assert (after["title"], after["priority"], after["description"]) == ("Final", 0, "now with text")
    assert after["assignee"] == "bob"
    assert sorted(after["labels"]) == ["keep", "new"]
    assert after["updated_at"] > before["updated_at"]
    assert r.json["title"] == "Final"


def test_an_empty_update_is_refused(make_agent):
    ana = make_agent()
    r = ana.patch(f"/beads/{ana.create('Draft')}", {})
    assert r.status_code == 422


def test_comments_are_added_with_their_author(make_agent):
    ana = make_agent(alias="ana")
    bob = make_agent(alias="bob")
    bead_id = ana.create("Discuss")
    r = bob.post(f"/beads/{bead_id}/comments", {"text": "I think we should split it"})
    assert r.status_code == 201
    assert (r.json["author"], r.json["text"]) == ("bob", "I think we should split it")
    ana.post(f"/beads/{bead_id}/comments", {"text": "agreed"})
    comments = ana.get(f"/beads/{bead_id}").json["comments"]
    assert [(c["author"], c["text"]) for c in comments] == [
        ("bob", "I think we should split it"), ("ana", "agreed")]


# -- links and deps -----------------------------------------------------------------------------

def test_a_blocked_by_link_shows_in_deps_until_the_blocker_closes(make_agent):
    ana = make_agent()
    blocker, bead = ana.create("Schema"), ana.create("API on the schema")
    r = ana.post(f"/beads/{bead}/deps", {"target": blocker, "type": "blocks"})
    assert r.status_code == 201
    assert r.json == {"issue_id": bead, "depends_on_id": blocker, "type": "blocks"}
    deps = ana.get(f"/beads/{bead}/deps").json
    assert ids(deps["active_blockers"]) == [blocker] and deps["resolved_blockers"] == []
    assert ids(ana.get(f"/beads/{blocker}/deps").json["blocks"]) == [bead]
    assert [d["depends_on_id"] for d in ana.get(f"/beads/{bead}").json["dependencies"]] == [blocker]
    ana.post(f"/beads/{blocker}/close")
    deps = ana.get(f"/beads/{bead}/deps").json
    assert deps["active_blockers"] == [] and ids(deps["resolved_blockers"]) == [blocker]


def test_blocked_by_at_creation_is_the_same_as_a_link(make_agent):
    ana = make_agent()
    blocker = ana.create("Schema")
    bead = ana.create("API", blocked_by=[blocker])
    assert ids(ana.get(f"/beads/{bead}/deps").json["active_blockers"]) == [blocker]
    assert bead not in ids(ana.get("/ready").json)


def test_a_parent_link_shows_as_parent_and_children(make_agent):
    ana = make_agent()
    epic, task = ana.create("Epic", issue_type="epic"), ana.create("Task")
    assert ana.post(f"/beads/{task}/deps", {"target": epic, "type": "parent-child"}).status_code == 201
    assert ana.get(f"/beads/{task}/deps").json["parent"]["id"] == epic
    assert ids(ana.get(f"/beads/{epic}/deps").json["children"]) == [task]


def test_a_link_to_an_unknown_bead_is_not_found_and_adds_nothing(make_agent):
    ana = make_agent()
    bead = ana.create("Task")
    r = ana.post(f"/beads/{bead}/deps", {"target": "bd-ghost"})
    assert r.status_code == 404
    assert ana.get(f"/beads/{bead}").json["dependencies"] == []


@pytest.mark.parametrize("dep_type", ["blocks", "parent-child"])
def test_a_link_that_would_close_a_cycle_is_refused(make_agent, dep_type):
    ana = make_agent()
    a, b, c = ana.create("A"), ana.create("B"), ana.create("C")
    assert ana.post(f"/beads/{a}/deps", {"target": b, "type": dep_type}).status_code == 201
    assert ana.post(f"/beads/{b}/deps", {"target": c, "type": dep_type}).status_code == 201
    for source, target in ((b, a), (c, a), (a, a)):
        r = ana.post(f"/beads/{source}/deps", {"target": target, "type": dep_type})
        assert r.status_code == 409, (source, target)
        assert r.json["error"]["code"] == "cycle"
    assert [d["depends_on_id"] for d in ana.get(f"/beads/{c}").json["dependencies"]] == []
    assert [d["depends_on_id"] for d in ana.get(f"/beads/{b}").json["dependencies"]] == [c]


def test_a_blocks_link_from_an_epic_to_its_own_child_is_a_cycle(make_agent):
    ana = make_agent()
    epic = ana.create("Epic", issue_type="epic")
    child = ana.create("Child", parent=epic)
    r = ana.post(f"/beads/{epic}/deps", {"target": child, "type": "blocks"})
    assert r.status_code == 409
    assert r.json["error"]["code"] == "cycle"


# -- search -----------------------------------------------------------------------------------

def test_search_finds_title_description_and_id_within_the_project_only(make_agent):
    ana = make_agent(alias="ana")
    in_title = ana.create("Checkout flow breaks")
    in_text = ana.create("Payment", description="the checkout button is grey")
    ana.create("Unrelated")
    eve = make_agent(project="rival", alias="eve")
    eve.create("Checkout for the rival")
    assert set(ids(ana.get("/search?q=checkout").json)) == {in_title, in_text}
    assert ids(ana.get(f"/search?q={in_title}").json) == [in_title]
    assert ana.get("/search?q=nothing-like-this").json == []


def test_search_treats_like_wildcards_as_plain_text(make_agent):
    ana = make_agent()
    percent = ana.create("Discount 50% off")
    ana.create("Plain title")
    ana.create("Another_thing")
    assert ids(ana.get("/search?q=%25").json) == [percent]
    # "_" is not "any character": "n_t" does not match "Plain title"
    assert ids(ana.get("/search?q=n_t").json) == []


# -- close, reopen, ready ---------------------------------------------------------------------

def test_closing_a_blocker_returns_the_dependents_that_became_ready(make_agent):
    ana = make_agent()
    x, y = ana.create("X"), ana.create("Y")
    only_x = ana.create("needs X", blocked_by=[x])
    both = ana.create("needs X and Y", blocked_by=[x, y])
    r = ana.post(f"/beads/{x}/close", {"reason": "shipped"})
    assert r.status_code == 200
    assert r.json["bead"]["status"] == "closed"
    assert r.json["bead"]["close_reason"] == "shipped"
    assert r.json["bead"]["closed_at"]
    assert ids(r.json["unblocked"]) == [only_x]
    assert ids(ana.post(f"/beads/{y}/close").json["unblocked"]) == [both]


def test_patching_status_closed_answers_like_close(make_agent):
    ana = make_agent()
    blocker = ana.create("Blocker")
    dependent = ana.create("Dependent", blocked_by=[blocker])
    r = ana.patch(f"/beads/{blocker}", {"status": "closed"})
    assert r.status_code == 200
    assert r.json["bead"]["id"] == blocker and r.json["bead"]["status"] == "closed"
    assert ids(r.json["unblocked"]) == [dependent]


def test_closing_the_last_open_child_of_an_epic_makes_the_epic_ready(make_agent):
    ana = make_agent()
    epic = ana.create("Epic", issue_type="epic")
    first, second = ana.create("one", parent=epic), ana.create("two", parent=epic)
    assert epic not in ids(ana.get("/ready").json)
    assert ana.post(f"/beads/{first}/close").json["unblocked"] == []
    r = ana.post(f"/beads/{second}/close")
    assert ids(r.json["unblocked"]) == [epic]
    assert epic in ids(ana.get("/ready").json)


def test_closing_the_blocker_of_a_parent_unblocks_its_children(make_agent):
    ana = make_agent()
    blocker = ana.create("Blocker")
    parent = ana.create("Feature", blocked_by=[blocker])
    child = ana.create("Feature part", parent=parent)
    assert child not in ids(ana.get("/ready").json)
    # the parent has an open child: still a container, not work
    assert ids(ana.post(f"/beads/{blocker}/close").json["unblocked"]) == [child]


def test_a_closed_bead_can_be_reopened_and_blocks_again(make_agent):
    ana = make_agent()
    blocker = ana.create("Blocker")
    dependent = ana.create("Dependent", blocked_by=[blocker])
    ana.post(f"/beads/{blocker}/close", {"reason": "done"})
    assert dependent in ids(ana.get("/ready").json)
    r = ana.post(f"/beads/{blocker}/reopen")
    assert r.status_code == 200
    assert r.json["status"] == "open"
    assert "closed_at" not in r.json and "close_reason" not in r.json
    assert blocker in ids(ana.get("/beads").json)
    assert dependent not in ids(ana.get("/ready").json)


def test_reopening_a_bead_that_is_not_closed_is_a_conflict(make_agent):
    ana = make_agent()
    assert ana.post(f"/beads/{ana.create('Open')}/reopen").status_code == 409


def test_ready_lists_open_unblocked_work_by_priority_then_newest(make_agent):
    ana = make_agent()
    low = ana.create("low", priority=3)
    high_old = ana.create("high, older", priority=1)
    high_new = ana.create("high, newer", priority=1)
    urgent = ana.create("urgent", priority=0)
    # none of these is work to take
    blocked = ana.create("blocked", priority=0, blocked_by=[low])
    claimed = ana.create("claimed", priority=0)
    ana.post(f"/beads/{claimed}/claim")
    closed = ana.create("closed", priority=0)
    ana.post(f"/beads/{closed}/close")
    ana.create("a message", priority=0, issue_type="message")
    epic = ana.create("epic", priority=0, issue_type="epic")
    child = ana.create("child", priority=4, parent=epic)
    assert ids(ana.get("/ready").json) == [urgent, high_new, high_old, low, child]
    assert ids(ana.get("/ready?limit=2").json) == [urgent, high_new]
    assert blocked not in ids(ana.get("/ready").json)


def test_explain_says_why_a_bead_is_not_ready(make_agent):
    ana = make_agent()
    blocker = ana.create("Blocker")
    blocked = ana.create("Blocked", blocked_by=[blocker])
    claimed = ana.create("Claimed")
    ana.post(f"/beads/{claimed}/claim")
    epic = ana.create("Epic", issue_type="epic")
    ana.create("Child", parent=epic)

    ok = ana.get(f"/ready/{blocker}").json
    assert (ok["id"], ok["ready"], ok["reasons"]) == (blocker, True, [])
    why = ana.get(f"/ready/{blocked}").json
    assert why["ready"] is False
    assert any(blocker in reason for reason in why["reasons"])
    assert ana.get(f"/ready/{claimed}").json["ready"] is False
    assert ana.get(f"/ready/{claimed}").json["reasons"]
    assert ana.get(f"/ready/{epic}").json["ready"] is False
    assert ana.get("/ready/bd-ghost").status_code == 404


def test_explain_and_ready_agree(make_agent):
    ana = make_agent()
    blocker = ana.create("Blocker")
    beads = [blocker, ana.create("Blocked", blocked_by=[blocker]), ana.create("Free"),
             ana.create("Internal", issue_type="gate")]
    ready = set(ids(ana.get("/ready").json))
    for bead_id in beads:
        assert ana.get(f"/ready/{bead_id}").json["ready"] is (bead_id in ready)


# -- ids and references -------------------------------------------------------------------------

def test_children_get_dotted_ids_under_their_parent(make_agent):
    ana = make_agent()
    parent = ana.create("Epic", issue_type="epic")
    first, second = ana.create("one", parent=parent), ana.create("two", parent=parent)
    assert (first, second) == (f"{parent}.1", f"{parent}.2")
    assert ana.create("one.one", parent=first) == f"{parent}.1.1"
    assert ana.create("three", parent=parent) == f"{parent}.3"
    assert ana.get(f"/beads/{first}/deps").json["parent"]["id"] == parent


@pytest.mark.parametrize("redis", [pytest.param("fake", marks=pytest.mark.fake)], indirect=True)
def test_children_created_at_the_same_moment_get_distinct_dotted_ids(pg_app, make_pg_agent):
    ana = make_pg_agent(alias="ana")
    parent = ana.create("Epic", issue_type="epic")
    barrier = threading.Barrier(8)

    def create(n):
        client = pg_app.test_client()
        barrier.wait(timeout=30)
        return client.post("/v1/beads", json={"title": f"part {n}", "parent": parent},
                           headers={"Authorization": f"Bearer {ana.token}"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    assert [r.status_code for r in answers] == [201] * 8
    assert sorted(r.json["id"] for r in answers) == sorted(f"{parent}.{n}" for n in range(1, 9))


def test_children_of_a_bead_in_another_repo_get_distinct_ids(make_agent):
    ana = make_agent(alias="ana", origin=SHOP)
    bob = make_agent(alias="bob", origin=API)
    epic = ana.create("Cross-repo epic", issue_type="epic")
    first = bob.post("/beads", {"title": "api part", "parent": f"shop:{epic}"})
    second = bob.post("/beads", {"title": "api part two", "parent": f"shop:{epic}"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["id"] != second.json["id"]
    children = ana.get(f"/beads/{epic}/deps").json["children"]
    assert sorted(ids(children)) == sorted([first.json["id"], second.json["id"]])


def test_a_bead_in_another_repo_is_reached_as_repo_colon_id(make_agent):
    ana = make_agent(alias="ana", origin=SHOP)
    bob = make_agent(alias="bob", origin=API)
    api_bead = bob.create("Expose the endpoint")
    for ref in (f"api:{api_bead}", f"github.com/acme/api:{api_bead}", api_bead):
        r = ana.get(f"/beads/{ref}")
        assert r.status_code == 200, ref
        assert (r.json["id"], r.json["repo"]) == (api_bead, "github.com/acme/api")
    assert ana.get(f"/beads/nowhere:{api_bead}").status_code == 404


def test_a_blocker_in_another_repo_blocks_until_it_closes(make_agent):
    ana = make_agent(alias="ana", origin=SHOP)
    bob = make_agent(alias="bob", origin=API)
    api_bead = bob.create("Expose the endpoint")
    shop_bead = ana.create("Call the endpoint", blocked_by=[f"api:{api_bead}"])
    dependencies = ana.get(f"/beads/{shop_bead}").json["dependencies"]
    assert [d["depends_on_id"] for d in dependencies] == [f"api:{api_bead}"]
    assert shop_bead not in ids(ana.get("/ready").json)
    assert any(api_bead in reason for reason in ana.get(f"/ready/{shop_bead}").json["reasons"])
    unblocked = bob.post(f"/beads/{api_bead}/close").json["unblocked"]
    assert [(b["id"], b["repo"]) for b in unblocked] == [(shop_bead, "github.com/acme/shop")]


def test_a_bare_id_in_several_repos_is_ambiguous_except_in_your_own(make_agent):
    ana = make_agent(alias="ana", origin=SHOP)
    bob = make_agent(alias="bob", origin=API)
    carl = make_agent(alias="carl", origin="git@github.com:acme/docs.git")
    assert ana.sync(record("bd-same", title="shop one")).status_code == 200
    assert bob.sync(record("bd-same", title="api one")).status_code == 200
    assert ana.get("/beads/bd-same").json["title"] == "shop one"
    assert bob.get("/beads/bd-same").json["title"] == "api one"
    r = carl.get("/beads/bd-same")
    assert r.status_code == 409
    assert r.json["error"]["code"] == "ambiguous"
    assert carl.get("/beads/api:bd-same").json["title"] == "api one"


def test_a_short_repo_name_shared_by_two_repos_asks_for_the_canonical_origin(make_agent):
    ana = make_agent(alias="ana", origin=SHOP)
    olga = make_agent(alias="olga", origin="git@github.com:other/shop.git")
    theirs = olga.create("Their shop bead")
    r = ana.get(f"/beads/shop:{theirs}")
    assert r.status_code == 409
    assert r.json["error"]["code"] == "ambiguous"
    assert "github.com/acme/shop" in r.json["error"]["message"]
    assert "github.com/other/shop" in r.json["error"]["message"]
    assert ana.get(f"/beads/github.com/other/shop:{theirs}").json["title"] == "Their shop bead"


# -- history ------------------------------------------------------------------------------------

def test_a_beads_history_says_who_changed_what_and_when_newest_first(make_agent):
    ana, bob = make_agent(alias="ana"), make_agent(alias="bob")
    ref = ana.create("Fix login")
    bob.post(f"/beads/{ref}/claim")
    ana.patch(f"/beads/{ref}", {"title": "Fix the login"})
    bob.post(f"/beads/{ref}/close", {"reason": "done"})
    r = ana.get(f"/beads/{ref}/history")
    assert r.status_code == 200
    changes = [(c["who"], c["kind"]) for c in r.json]
    assert changes[0] == ("bob", "bead.closed") and changes[-1] == ("ana", "bead.created")
    assert ("bob", "claim.created") in changes and ("ana", "bead.updated") in changes
    updated = next(c for c in r.json if c["kind"] == "bead.updated")
    assert updated["data"]["before"] == {"title": "Fix login"}
    assert updated["data"]["after"] == {"title": "Fix the login"}
    assert all(c["at"].endswith("Z") for c in r.json)
    assert [c["id"] for c in r.json] == sorted((c["id"] for c in r.json), reverse=True)


def test_a_beads_history_is_read_like_the_bead_itself(client, make_agent):
    ana = make_agent(alias="ana")
    ref = ana.create("Fix login")
    key = make_agent.keys["shop"]
    by_person = client.get(f"/v1/beads/{ref}/history", headers={"Authorization": f"Bearer {key}"})
    assert by_person.status_code == 200 and by_person.json[-1]["kind"] == "bead.created"
    stranger = make_agent("elsewhere", "git@github.com:other/shop.git", alias="eve")
    assert stranger.get(f"/beads/{ref}/history").status_code == 404
    assert stranger.get(f"/beads/github.com/acme/shop:{ref}/history").status_code == 404
    assert ana.get("/beads/bd-nope/history").status_code == 404
