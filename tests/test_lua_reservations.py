"""The reservation scripts (reserve, autoreserve, unreserve, expire), on fakeredis and a real redis-server."""

from __future__ import annotations

import pytest

from store.keys import Keys
from store.redis import DEFAULT_RESERVATION_GRACE, RedisStore

pytestmark = pytest.mark.atomic  # also on a real Redis server: the reservation scripts

NOW = 1_000_000.0


def entry(ws: int, pattern: str, expires: float, auto: bool = False, reason: str = "") -> dict:
    return {"ws": ws, "alias": f"ws{ws}", "pattern": pattern, "reason": reason, "bead": None, "auto": auto,
            "expires": expires}


def patterns(entries: list[dict]) -> list[str]:
    return sorted(e["pattern"] for e in entries)


def test_the_reservation_keys_are_pinned():
    keys = Keys("bw")
    assert keys.reservations_key(3, 7) == "bw:{p:3}:res:7"
    assert keys.reservation_expiry_key(3, 7) == "bw:{p:3}:resexp:7"


def test_reserve_returns_only_the_live_entries_of_other_workspaces(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 2, [entry(2, "src/**", NOW + 60), entry(2, "old.py", NOW + 1)], NOW)
    others = rs.reserve(1, 1, 1, [entry(1, "src/a.py", NOW + 300)], NOW + 5).others
    assert patterns(others) == ["src/**"]  # old.py has expired; our own entry is not "other"
    assert patterns(rs.reservations(1, 1, NOW + 5)) == ["src/**", "src/a.py"]


def test_reserving_again_renews_in_place(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 1, [entry(1, "a.py", NOW + 10, reason="first")], NOW)
    rs.reserve(1, 1, 1, [entry(1, "a.py", NOW + 500, reason="again")], NOW + 5)
    (only,) = rs.reservations(1, 1, NOW + 100)
    assert (only["expires"], only["reason"]) == (NOW + 500, "again")
    assert redis.hlen(rs.keys.reservations_key(1, 1)) == 1


def test_a_renewal_without_reason_or_bead_keeps_those_of_the_live_entry(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 1, [{**entry(1, "a.py", NOW + 10, reason="schema work"), "bead": "bd-7"},
                         entry(1, "b.py", NOW + 10, reason="b work")], NOW)
    renewed = [entry(1, "a.py", NOW + 500), {**entry(1, "b.py", NOW + 500, reason="new"), "bead": "bd-9"}]
    granted = rs.reserve(1, 1, 1, renewed, NOW + 5).granted
    assert [(g["pattern"], g["reason"], g["bead"]) for g in granted] == \
           [("a.py", "schema work", "bd-7"), ("b.py", "new", "bd-9")]  # what is restated wins
    stored = {e["pattern"]: e for e in rs.reservations(1, 1, NOW + 100)}
    assert (stored["a.py"]["reason"], stored["a.py"]["bead"], stored["a.py"]["expires"]) == \
           ("schema work", "bd-7", NOW + 500)
    # an expired entry, or another workspace's, or an automatic one, lends nothing
    rs.reserve(1, 1, 1, [entry(1, "c.py", NOW + 10, reason="old")], NOW)
    rs.reserve(1, 1, 2, [entry(2, "d.py", NOW + 600, reason="theirs")], NOW)
    rs.auto_reserve(1, 1, 1, [entry(1, "e.py", NOW + 600, auto=True, reason="auto")], NOW, False)
    fresh = rs.reserve(1, 1, 1, [entry(1, p, NOW + 700) for p in ("c.py", "d.py", "e.py")], NOW + 20).granted
    assert [(g["reason"], g["bead"], g["auto"]) for g in fresh] == [("", None, False)] * 3


def test_both_keys_expire_with_their_last_entry_plus_the_grace(redis):
    rs = RedisStore(redis, Keys("t"))
    import time

    now = time.time()
    rs.reserve(1, 1, 1, [entry(1, "a.py", now + 30)], now)
    for key in (rs.keys.reservations_key(1, 1), rs.keys.reservation_expiry_key(1, 1)):
        assert 0 < redis.pttl(key) <= (30 + DEFAULT_RESERVATION_GRACE) * 1000


def test_writers_drop_entries_expired_longer_than_the_grace(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 2, [entry(2, "gone.py", NOW)], NOW - 1)
    rs.reserve(1, 1, 1, [entry(1, "a.py", NOW + 10_000)], NOW + DEFAULT_RESERVATION_GRACE + 1)
    assert redis.hkeys(rs.keys.reservations_key(1, 1)) == ["1\0a.py"]


def test_repos_and_projects_do_not_see_each_other(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 2, [entry(2, "a.py", NOW + 60)], NOW)
    assert rs.reserve(1, 2, 1, [entry(1, "a.py", NOW + 60)], NOW).others == []
    assert rs.reserve(9, 1, 1, [entry(1, "a.py", NOW + 60)], NOW).others == []


def test_autoreserve_writes_auto_entries_and_releases_those_no_longer_listed(redis):
    rs = RedisStore(redis, Keys("t"))
    both = [entry(1, "a.py", NOW + 300, True), entry(1, "b.py", NOW + 300, True)]
    rs.auto_reserve(1, 1, 1, both, NOW, True)
    assert patterns(rs.reservations(1, 1, NOW)) == ["a.py", "b.py"]
    rs.auto_reserve(1, 1, 1, [entry(1, "b.py", NOW + 400, True)], NOW + 1, True)
    (b,) = rs.reservations(1, 1, NOW + 1)
    assert (b["pattern"], b["expires"]) == ("b.py", NOW + 400)
    rs.auto_reserve(1, 1, 1, [], NOW + 2, True)
    assert rs.reservations(1, 1, NOW + 2) == []


def test_autoreserve_reports_new_and_released_patterns_but_not_renewals(redis):
    rs = RedisStore(redis, Keys("t"))
    both = [entry(1, "a.py", NOW + 300, True), entry(1, "b.py", NOW + 300, True)]
    first = rs.auto_reserve(1, 1, 1, both, NOW, True)
    assert (first.added, first.released) == (["a.py", "b.py"], [])
    again = rs.auto_reserve(1, 1, 1, both, NOW + 1, True)  # the next CLI call, same modified files
    assert (again.added, again.released) == ([], [])
    moved = rs.auto_reserve(1, 1, 1, [entry(1, "b.py", NOW + 400, True), entry(1, "c.py", NOW + 400, True)],
                            NOW + 2, True)
    assert (moved.added, moved.released) == (["c.py"], ["a.py"])
    later = rs.auto_reserve(1, 1, 1, [entry(1, "b.py", NOW + 900, True)], NOW + 500, True)  # c.py had expired
    assert (later.added, later.released) == (["b.py"], [])


def test_autoreserve_over_an_explicit_reservation_reports_nothing(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 1, [entry(1, "a.py", NOW + 60, reason="mine")], NOW)
    done = rs.auto_reserve(1, 1, 1, [entry(1, "a.py", NOW + 300, True)], NOW + 1, True)
    assert (done.added, done.released) == ([], [])
    done = rs.auto_reserve(1, 1, 1, [], NOW + 2, True)  # the explicit one stays and is not released
    assert (done.added, done.released) == ([], [])


def test_a_cut_list_releases_nothing(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.auto_reserve(1, 1, 1, [entry(1, "a.py", NOW + 300, True)], NOW, True)
    rs.auto_reserve(1, 1, 1, [entry(1, "b.py", NOW + 300, True)], NOW + 1, False)
    assert patterns(rs.reservations(1, 1, NOW + 1)) == ["a.py", "b.py"]


def test_autoreserve_leaves_explicit_reservations_alone(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 1, [entry(1, "a.py", NOW + 60, reason="mine")], NOW)
    rs.auto_reserve(1, 1, 1, [entry(1, "a.py", NOW + 300, True)], NOW + 1, True)
    rs.auto_reserve(1, 1, 1, [], NOW + 2, True)  # no longer modified: an explicit one stays
    (a,) = rs.reservations(1, 1, NOW + 2)
    assert (a["auto"], a["reason"], a["expires"]) == (False, "mine", NOW + 60)


def test_autoreserve_prefilters_others_by_literal_path_and_glob_head(redis):
    rs = RedisStore(redis, Keys("t"))
    held = ["src/a.py", "src", "src/a.py/inner", "src/b.py", "src/ab.py", "docs/x.md", "src/*.py", "**/*.sql",
            "docs/**", "s*"]
    rs.reserve(1, 1, 2, [entry(2, p, NOW + 60) for p in held], NOW)
    found = rs.auto_reserve(1, 1, 1, [entry(1, "src/a.py", NOW + 300, True)], NOW, True).others
    # candidates only: the exact check (src/*.py yes, **/*.sql no, ...) is store.reservations.overlaps
    assert patterns(found) == sorted(["src/a.py", "src", "src/a.py/inner", "src/*.py", "**/*.sql", "s*"])


def test_autoreserve_with_a_glob_of_ours_compares_literal_heads(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 2, [entry(2, p, NOW + 60) for p in ("data/a[1].csv", "data/ab.csv", "data/b.csv")], NOW)
    found = rs.auto_reserve(1, 1, 1, [entry(1, "data/a[[]1].csv", NOW + 300, True)], NOW, True).others
    assert patterns(found) == ["data/a[1].csv", "data/ab.csv"]


def test_unreserve_takes_the_given_entries_or_all_of_one_workspace(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 1, [entry(1, p, NOW + 60) for p in ("a.py", "b.py", "c.py")], NOW)
    rs.reserve(1, 1, 2, [entry(2, "a.py", NOW + 60)], NOW)
    assert patterns(rs.unreserve(1, 1, 1, ["a.py", "nope.py"])) == ["a.py"]
    assert patterns(rs.unreserve(1, 1, 1, None)) == ["b.py", "c.py"]
    assert [(e["ws"], e["pattern"]) for e in rs.reservations(1, 1, NOW)] == [(2, "a.py")]


def test_expire_returns_each_expired_entry_once(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.reserve(1, 1, 1, [entry(1, "a.py", NOW + 1), entry(1, "b.py", NOW + 100)], NOW)
    assert rs.expire_reservations(1, 1, NOW + 0.5, 100) == []
    assert patterns(rs.expire_reservations(1, 1, NOW + 2, 100)) == ["a.py"]
    assert rs.expire_reservations(1, 1, NOW + 2, 100) == []
    assert patterns(rs.reservations(1, 1, NOW + 2)) == ["b.py"]
