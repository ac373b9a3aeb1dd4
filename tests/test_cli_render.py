"""Bead text printed by the CLI cannot drive the reader's terminal (it is synced or agent-written)."""

from __future__ import annotations

from cli import beads


def test_titles_descriptions_and_comments_are_printed_without_escape_sequences(capsys):
    evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m"
    bead = {"id": "bd-1", "title": f"fix {evil}", "status": "open", "priority": 1, "issue_type": "task",
            "description": f"line one\n{evil}", "labels": [evil], "dependencies": [],
            "comments": [{"author": f"eve{evil}", "text": evil, "created_at": None}], "claim": None}
    beads._print_bead(bead)
    beads._print_beads([bead], "none")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "fix red" in out and "line one\n" in out


def test_summaries_are_clean_too():
    assert beads._summary({"id": "bd-1", "title": "a\x1b[2Jb"}) == "bd-1: ab"
    assert "\x1b" not in beads._brief({"id": "bd-2", "status": "open", "title": "\x1b[31mx"})


def test_history_lines_are_clean_and_one_per_change(capsys):
    evil = "\x1b]0;pwned\x07\x1b[2J"
    beads._print_history([
        {"id": 2, "at": "2026-12-04T15:02:11.5Z", "who": f"eve{evil}", "kind": "bead.closed",
         "data": {"bead": "bd-1", "alias": "eve", "reason": f"done\n{evil}x", "unblocked": ["bd-2", "bd-3"],
                  "ts": 1796405844.5}},
        {"id": 1, "at": "2026-12-04T15:00:00Z", "who": "ana", "kind": "claim.created",
         "data": {"bead": "bd-1", "alias": "ana", "title": "x" * 200}}])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    first, second = out.splitlines()
    assert first.split() == ["2026-12-04", "15:02", "eve", "bead.closed", "reason=done", "x",
                             "unblocked=bd-2,bd-3"]
    assert second.startswith("2026-12-04 15:00  ana  claim.created  title=xxx") and second.endswith("…")
    beads._print_history([])
    assert capsys.readouterr().out == "no history\n"
