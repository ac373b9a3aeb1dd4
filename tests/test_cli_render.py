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
