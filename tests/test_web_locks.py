"""Reservations over the API: advisory grants, renewals, isolation, check, release, expiry, auto-reserve."""

from __future__ import annotations

import json

import pytest

from tests.clock import FakeClock

pytestmark = pytest.mark.atomic  # also on a real Redis server: reserve/unreserve/expire Lua over the API

SHOP = "git@github.com:acme/shop.git"


def banner(response) -> dict | None:
    raw = response.headers.get("X-Wire-Banner")
    return json.loads(raw) if raw else None


def changed(agent, paths, truncated: bool = False, path: str = "/whoami"):
    """A call carrying the auto-reserve header, as the CLI sends it."""
    headers = {**agent._h(), "X-Wire-Changed": json.dumps(paths)}
    if truncated:
        headers["X-Wire-Changed-Truncated"] = "1"
    return agent.client.get(f"/v1{path}", headers=headers)


def unlock(agent, body):
    return agent.client.delete("/v1/locks", json=body, headers=agent._h())


def mine(agent) -> list[str]:
    return [r["pattern"] for r in agent.get("/locks?mine=1").json]


@pytest.fixture
def pair(make_agent):
    # two clones of one repo, their origins spelled differently
    return (make_agent(alias="ana", human="Ana"),
            make_agent(alias="bob", origin="https://github.com/acme/shop"))


def test_a_conflicting_reservation_is_granted_naming_the_holder_reason_and_time_left(pair):
    ana, bob = pair
    first = bob.post("/locks", {"paths": ["src/components/**"], "reason": "restyling", "ttl": 600,
                                "bead": "bd-7"})
    assert first.status_code == 200 and first.json["conflicts"] == []
    r = ana.post("/locks", {"paths": ["src/components/Button.tsx"], "reason": "fix click"})
    assert r.status_code == 200
    (granted,) = r.json["granted"]
    assert granted["pattern"] == "src/components/Button.tsx" and granted["mine"] is True
    assert 299 <= granted["seconds_left"] <= 300
    (conflict,) = r.json["conflicts"]
    assert conflict["alias"] == "bob" and conflict["reason"] == "restyling" and conflict["bead"] == "bd-7"
    assert conflict["pattern"] == "src/components/**" and conflict["path"] == "src/components/Button.tsx"
    assert 590 <= conflict["seconds_left"] <= 600
    assert {r["alias"] for r in ana.get("/locks").json} == {"ana", "bob"}


@pytest.mark.parametrize("held, wanted", [
    ("src/", "src/a.py"), ("src/a.py", "src/"), ("*.sql", "db/migrations/001.sql"), ("db/001.sql", "*.sql"),
    ("src/**/test_*.py", "src/x/test_cart.py"), ("src/?.py", "src/a.py"), ("src/[ab].py", "src/*.py"),
])
def test_globs_conflict_with_what_they_overlap_in_both_directions(pair, held, wanted):
    ana, bob = pair
    bob.post("/locks", {"paths": [held]})
    assert [c["alias"] for c in ana.post("/locks", {"paths": [wanted]}).json["conflicts"]] == ["bob"]


@pytest.mark.parametrize("held, wanted", [
    ("src/", "srcx/a.py"), ("*.sql", "a.py"), ("src/*.py", "src/a/b.py"), ("src/[ab].py", "src/c.py"),
    ("docs/**", "src/**"),
])
def test_globs_that_do_not_overlap_do_not_conflict(pair, held, wanted):
    ana, bob = pair
    bob.post("/locks", {"paths": [held]})
    assert ana.post("/locks", {"paths": [wanted]}).json["conflicts"] == []


def test_reserving_your_own_path_again_renews_it(pair):
    ana, _ = pair
    ana.post("/locks", {"paths": ["a.py"], "ttl": 5, "reason": "quick look"})
    again = ana.post("/locks", {"paths": ["a.py"], "ttl": 900, "reason": "longer"})
    assert again.json["conflicts"] == []
    (row,) = ana.get("/locks").json
    assert row["reason"] == "longer" and row["seconds_left"] > 800


def test_other_repos_of_the_project_never_conflict(make_agent):
    ana = make_agent(alias="ana")
    api = make_agent(alias="api-dev", origin="git@github.com:acme/api.git")
    api.post("/locks", {"paths": ["**"]})
    assert ana.post("/locks", {"paths": ["src/a.py"]}).json["conflicts"] == []
    assert [r["alias"] for r in ana.get("/locks").json] == ["ana"]


def test_other_projects_never_see_or_conflict(make_agent):
    ana = make_agent(project="shop", alias="ana")
    eve = make_agent(project="rival", alias="eve")  # the same origin, in another tenant
    eve.post("/locks", {"paths": ["src/"]})
    assert ana.post("/locks", {"paths": ["src/a.py"]}).json["conflicts"] == []
    assert {h["alias"] for h in ana.get("/locks/check?path=src/a.py").json["holders"]} == {"ana"}
    assert [r["alias"] for r in eve.get("/locks").json] == ["eve"]


def test_check_says_who_holds_what_and_reserves_nothing(pair):
    ana, bob = pair
    bob.post("/locks", {"paths": ["src/**"], "reason": "refactor"})
    ana.post("/locks", {"paths": ["README.md"]})
    r = ana.get("/locks/check?path=src/a.py&path=README.md&path=docs/x.md")
    holders = {(h["path"], h["alias"], h["mine"]) for h in r.json["holders"]}
    assert holders == {("src/a.py", "bob", False), ("README.md", "ana", True)}
    assert next(h for h in r.json["holders"] if h["alias"] == "bob")["reason"] == "refactor"
    assert mine(ana) == ["README.md"]  # nothing was reserved by checking
    posted = ana.post("/locks/check", {"paths": ["src/a.py"]})
    assert [h["alias"] for h in posted.json["holders"]] == ["bob"]
    assert ana.get("/locks/check").status_code == 422


def test_unlock_releases_given_paths_or_all_and_never_someone_elses(pair):
    ana, bob = pair
    ana.post("/locks", {"paths": ["a.py", "b/", "*.sql"]})
    bob.post("/locks", {"paths": ["c.py"]})
    r = unlock(ana, {"paths": ["a.py", "c.py"]})
    assert [x["pattern"] for x in r.json["released"]] == ["a.py"] and r.json["not_held"] == ["c.py"]
    assert [x["pattern"] for x in unlock(ana, {"paths": ["b/"]}).json["released"]] == ["b/**"]
    assert [x["pattern"] for x in unlock(ana, {"all": True}).json["released"]] == ["**/*.sql"]
    assert mine(ana) == [] and mine(bob) == ["c.py"]


def test_mine_lists_only_the_callers_reservations(pair):
    ana, bob = pair
    ana.post("/locks", {"paths": ["a.py"]})
    bob.post("/locks", {"paths": ["b.py"]})
    assert mine(ana) == ["a.py"]
    assert [r["pattern"] for r in ana.get("/locks").json] == ["a.py", "b.py"]


@pytest.mark.parametrize("body", [
    {"paths": []}, {"paths": ["a.py"], "ttl": 0}, {"paths": ["a.py"], "ttl": 86401}, {"paths": ["../x"]},
    {"paths": [""]}, {"paths": ["a\u0000b"]}, {}, {"paths": ["x"] * 201},
])
def test_bad_reservations_are_refused_with_422(pair, body):
    ana, _ = pair
    assert ana.post("/locks", body).status_code == 422


@pytest.mark.parametrize("body", [{}, {"paths": ["a.py"], "all": True}, {"paths": []}])
def test_unlock_needs_either_paths_or_all(pair, body):
    assert unlock(pair[0], body).status_code == 422


def test_locks_need_a_workspace_token(client):
    assert client.get("/v1/locks").status_code == 401


def test_a_reservation_disappears_when_its_ttl_runs_out(pair, monkeypatch):
    ana, bob = pair
    clock = FakeClock()
    monkeypatch.setattr("store.reservations.now", clock)  # a lease's expiry is decided by the server's clock
    bob.post("/locks", {"paths": ["hot.py"], "ttl": 1})
    assert [c["alias"] for c in ana.post("/locks", {"paths": ["hot.py"]}).json["conflicts"]] == ["bob"]
    clock.advance(0.9)
    assert "bob" in [r["alias"] for r in ana.get("/locks").json]
    clock.advance(0.2)
    assert all(r["alias"] != "bob" for r in ana.get("/locks").json)
    assert ana.post("/locks", {"paths": ["hot.py"]}).json["conflicts"] == []


# -- auto-reserve (the header every CLI command sends from a worktree) ---------------------------

def test_the_changed_header_reserves_modified_files_and_releases_them_when_reverted(pair):
    ana, _ = pair
    assert changed(ana, ["src/a.py", "./src//b.py"]).status_code == 200
    rows = ana.get("/locks?mine=1").json
    assert [(r["pattern"], r["reason"], r["auto"]) for r in rows] == [("src/a.py", "auto", True),
                                                                      ("src/b.py", "auto", True)]
    changed(ana, ["src/b.py"])
    assert mine(ana) == ["src/b.py"]
    changed(ana, [])
    assert mine(ana) == []


def test_a_call_without_the_header_leaves_auto_reservations_alone(pair):
    ana, _ = pair
    changed(ana, ["a.py"])
    ana.get("/whoami")
    assert mine(ana) == ["a.py"]


def test_a_modified_file_reserved_by_someone_else_shows_in_the_banner(pair):
    ana, bob = pair
    bob.post("/locks", {"paths": ["src/**"], "reason": "big refactor", "ttl": 120})
    shown = banner(changed(ana, ["src/cart.py", "README.md"]))
    (conflict,) = shown["conflicts"]
    assert (conflict["path"], conflict["alias"], conflict["pattern"]) == ("src/cart.py", "bob", "src/**")
    assert conflict["reason"] == "big refactor" and 110 <= conflict["seconds_left"] <= 120
    assert shown["waiting"] == [] and shown["new"] == []
    again = banner(changed(ana, ["src/cart.py"]))
    assert [c["alias"] for c in again["conflicts"]] == ["bob"]  # on every call while it lasts
    assert banner(changed(ana, ["README.md"])) is None


def test_two_clones_modifying_one_file_warn_each_other(pair):
    ana, bob = pair
    assert banner(changed(bob, ["shared.py"])) is None
    (conflict,) = banner(changed(ana, ["shared.py"]))["conflicts"]
    assert (conflict["alias"], conflict["reason"], conflict["auto"]) == ("bob", "auto", True)
    assert [c["alias"] for c in banner(changed(bob, ["shared.py"]))["conflicts"]] == ["ana"]


def test_auto_reserve_never_downgrades_an_explicit_reservation(pair):
    ana, _ = pair
    ana.post("/locks", {"paths": ["a.py"], "reason": "mine, really", "ttl": 900})
    changed(ana, ["a.py"])
    changed(ana, [])
    (row,) = ana.get("/locks").json
    assert (row["reason"], row["auto"]) == ("mine, really", False)


def test_a_truncated_list_releases_nothing(pair):
    ana, _ = pair
    changed(ana, ["a.py", "b.py"])
    changed(ana, ["c.py"], truncated=True)
    assert mine(ana) == ["a.py", "b.py", "c.py"]


def test_odd_file_names_are_reserved_literally(pair):
    ana, bob = pair
    changed(bob, ["data/a[1].csv", "../outside"])
    assert mine(bob) == ["data/a[[]1].csv"]
    assert banner(changed(ana, ["data/a1.csv"])) is None
    (conflict,) = banner(changed(ana, ["data/a[1].csv"]))["conflicts"]
    assert conflict["path"] == "data/a[1].csv"


@pytest.mark.parametrize("raw", ["not json", '{"a": 1}', "[1, 2]", json.dumps(["x"] * 201),
                                 json.dumps(["x" * 2000]), "[" * 8000, '[["a.py"]]'],
                         ids=["not-json", "object", "numbers", "too-many", "too-long", "nested-8000",
                              "nested"])
def test_a_malformed_changed_header_is_ignored(pair, raw):
    ana, _ = pair
    r = ana.client.get("/v1/whoami", headers={**ana._h(), "X-Wire-Changed": raw})
    assert r.status_code == 200 and mine(ana) == []


def test_the_header_rides_on_any_route_and_applies_before_it(pair):
    ana, bob = pair
    bob.post("/locks", {"paths": ["x.py"]})
    r = changed(ana, ["x.py"], path="/locks?mine=1")
    assert [row["pattern"] for row in r.json] == ["x.py"]
    assert [c["alias"] for c in banner(r)["conflicts"]] == ["bob"]


def test_the_beads_file_is_never_reserved_automatically(pair):
    ana, bob = pair
    bob.post("/locks", {"paths": [".beads/**"], "reason": "explicit"})
    r = changed(ana, [".beads/issues.jsonl", "src/app.py"])  # as an older CLI may still send it
    assert mine(ana) == ["src/app.py"] and banner(r) is None
