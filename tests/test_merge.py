"""The three-way merge rules of store/merge.py (what `wire sync` and the git merge driver share)."""

from __future__ import annotations

from store.merge import OURS, THEIRS, merge_beads, merge_record, read_records, render


def bead(**fields) -> dict:
    return {"id": "bd-1", "title": "One", "status": "open", "priority": 2,
            "updated_at": "2026-01-01T00:00:00Z", **fields}


def test_a_side_that_did_not_change_takes_the_other_sides_version():
    base = bead()
    edited = bead(title="Renamed", updated_at="2026-01-02T00:00:00Z")
    assert merge_record(base, base, edited) == (edited, [])
    assert merge_record(base, edited, base) == (edited, [])


def test_different_fields_changed_on_each_side_are_both_kept():
    base = bead(labels=["a"])
    ours = bead(title="Ours", labels=["a", "x"], updated_at="2026-01-02T00:00:00Z")
    theirs = bead(priority=0, labels=[], notes="theirs", updated_at="2026-01-03T00:00:00Z")
    merged, conflicts = merge_record(base, ours, theirs)
    assert conflicts == []
    assert (merged["title"], merged["priority"], merged["notes"]) == ("Ours", 0, "theirs")
    assert merged["labels"] == ["x"]  # theirs removed a, ours added x
    assert merged["updated_at"] == "2026-01-03T00:00:00Z"


def test_the_same_field_changed_on_both_sides_goes_to_the_later_edit_and_names_the_loser():
    base = bead()
    ours = bead(title="Ours", updated_at="2026-01-05T00:00:00Z")
    theirs = bead(title="Theirs", updated_at="2026-01-04T00:00:00Z")
    merged, (conflict,) = merge_record(base, ours, theirs, ident="bd-1")
    assert merged["title"] == "Ours"
    assert (conflict.field, conflict.kept, conflict.value, conflict.lost) == ("title", OURS, "Ours", "Theirs")
    merged, (conflict,) = merge_record(base, theirs, ours, ident="bd-1")  # the same, sides swapped
    assert merged["title"] == "Ours" and conflict.kept == THEIRS


def test_the_status_moves_with_its_fields_as_one_decision():
    base = bead()
    closed = bead(status="closed", closed_at="2026-01-02T00:00:00Z", close_reason="done",
                  updated_at="2026-01-02T00:00:00Z")
    renamed = bead(title="Renamed", updated_at="2026-01-03T00:00:00Z")
    merged, conflicts = merge_record(base, renamed, closed)
    assert conflicts == [] and merged["title"] == "Renamed"
    assert (merged["status"], merged["closed_at"], merged["close_reason"]) == (
        "closed", closed["closed_at"], "done")
    deferred = bead(status="deferred", updated_at="2026-01-04T00:00:00Z")
    merged, (conflict,) = merge_record(base, deferred, closed)
    assert merged["status"] == "deferred" and "closed_at" not in merged and conflict.field == "status"


def test_comments_from_both_sides_are_kept():
    base = bead(comments=[{"id": 1, "author": "a", "text": "first"}])
    ours = bead(comments=[*base["comments"], {"id": 2, "author": "b", "text": "ours"}],
                updated_at="2026-01-03T00:00:00Z")
    theirs = bead(comments=[*base["comments"], {"id": 9, "author": "c", "text": "theirs"}])
    merged, _ = merge_record(base, ours, theirs)
    assert [c["text"] for c in merged["comments"]] == ["first", "ours", "theirs"]
    merged, _ = merge_record(None, ours, theirs)  # no base: the later record wins, comments still add up
    assert [c["text"] for c in merged["comments"]] == ["first", "ours", "theirs"]


def test_without_a_base_the_later_record_wins_whole_and_nothing_is_deleted():
    old = bead(title="Old", updated_at="2026-01-01T00:00:00Z")
    new = bead(title="New", updated_at="2026-02-01T00:00:00Z", notes="n")
    assert merge_record(None, old, new) == (new, [])
    merged = merge_beads(None, {"bd-1": old}, {"bd-1": new, "bd-2": bead(id="bd-2")})
    assert merged.records == {"bd-1": new, "bd-2": bead(id="bd-2")} and merged.order == ["bd-1", "bd-2"]


def test_a_bead_is_deleted_only_when_the_base_had_it_and_the_other_side_left_it_alone():
    base = {"bd-1": bead(), "bd-2": bead(id="bd-2")}
    changed = bead(id="bd-2", title="Changed", updated_at="2026-01-02T00:00:00Z")
    merged = merge_beads(base, {"bd-1": bead()}, {"bd-1": bead(), "bd-2": bead(id="bd-2")})
    assert merged.records["bd-2"] is None
    merged = merge_beads(base, {"bd-1": bead()}, {"bd-1": bead(), "bd-2": changed})
    assert merged.records["bd-2"] == changed and merged.conflicts[0].field == "record"
    merged = merge_beads(base, {"bd-1": bead()}, {"bd-1": bead(), "bd-2": bead(id="bd-2")}, deletions=False)
    assert merged.records["bd-2"] == bead(id="bd-2")
    # theirs lacking a bead ours has: a deletion on their side, unless their absence means nothing
    assert merge_beads(base, base, {"bd-1": bead()}).records["bd-2"] is None
    assert merge_beads(base, base, {"bd-1": bead()}, theirs_deletes=False).records["bd-2"] == bead(id="bd-2")


def test_a_file_reads_and_renders_keeping_untouched_lines_byte_for_byte():
    text = '{"id": "bd-1",  "title":"One"}\n{"id":"bd-2","title":"Two"}\n'
    records, lines = read_records(text)
    out = render(["bd-1", "bd-2", "bd-3"], {**records, "bd-2": None, "bd-3": {"id": "bd-3", "title": "Ü"}},
                 (records, lines))
    assert out == '{"id": "bd-1",  "title":"One"}\n{"id":"bd-3","title":"Ü"}\n'


def test_a_side_older_than_the_base_is_a_stale_copy_when_asked_not_an_edit():
    base = {"bd-1": bead(status="closed", updated_at="2026-02-01T00:00:00Z")}
    put_back = {"bd-1": bead(updated_at="2026-01-01T00:00:00Z")}  # a file git restored to an old version
    assert merge_beads(base, put_back, base, stale_ours=True).records["bd-1"]["status"] == "closed"
    assert merge_beads(base, put_back, base).records["bd-1"]["status"] == "open"  # git: a revert is an edit
