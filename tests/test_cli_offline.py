"""The CLI's request ids, retries, offline journal and replay, with a scripted transport (no server).

The same flows run against real servers in tests/test_offline.py; these pin the rules: which
calls are retried, that a retry and a replay reuse the first request id, and what is journaled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import client as client_module
from cli import local, offline
from cli.client import IDEMPOTENCY_HEADER, Client, Journaled, ServerUnreachable

URL = "http://127.0.0.1:9"


def refused(retryable: bool = True) -> ServerUnreachable:
    failure = ServerUnreachable("cannot reach the beadwire server at http://127.0.0.1:9: Connection refused")
    failure.retryable = retryable
    return failure


class Script:
    """A transport answering from a list: an exception is raised, a (status, body) is answered."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict | None, dict[str, str]]] = []

    def __call__(self, method, url, body, headers, timeout):
        self.calls.append((method, url.removeprefix(URL), json.loads(body) if body else None, dict(headers)))
        answer = self.answers.pop(0) if self.answers else (200, {})
        if isinstance(answer, BaseException):
            raise answer
        status, payload = answer
        return status, json.dumps(payload).encode(), {}

    def keys(self) -> list[str | None]:
        return [headers.get(IDEMPOTENCY_HEADER) for *_, headers in self.calls]


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(client_module, "RETRY_PAUSES", (0.0, 0.0))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    local.write_workspace(tmp_path, {"url": URL, "token": "bw_ws_test", "project": "p", "alias": "ana"})
    return tmp_path


def make(tree: Path, script: Script) -> Client:
    # write-through (a records call after each bead change) has its own tests: tests/test_cli_beadsfile.py
    return Client(URL, transport=script, start=tree, auto_reserve=False, write_through=False)


def test_a_write_is_retried_with_the_same_request_id_and_reads_carry_none(tree):
    unavailable = (503, {"error": {"code": "unavailable", "message": "db"}})
    script = Script(refused(), unavailable, (200, {"claimed": True}))
    assert make(tree, script).claim("bd-1") == {"claimed": True}
    keys = script.keys()
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
    read = Script(refused(), (200, {"alias": "ana"}))
    assert make(tree, read).whoami() == {"alias": "ana"}
    assert read.keys() == [None, None]


def test_each_call_gets_its_own_request_id(tree):
    script = Script((200, {}), (200, {}))
    c = make(tree, script)
    c.comment("bd-1", "one")
    c.comment("bd-1", "one")
    assert len(set(script.keys())) == 2


def test_a_timeout_is_not_retried_and_the_attempts_are_bounded(tree):
    once = Script(refused(retryable=False))
    with pytest.raises(ServerUnreachable):
        make(tree, once).whoami()
    assert len(once.calls) == 1
    down = Script(refused(), refused(), refused(), refused())
    with pytest.raises(ServerUnreachable):
        make(tree, down).whoami()
    assert len(down.calls) == 3


def test_an_unreachable_coordination_call_is_journaled_with_the_id_it_was_sent_with(tree):
    script = Script(refused(), refused(), refused())
    with pytest.raises(Journaled) as caught:
        make(tree, script).send_mail({"to": "bob", "body": "hi"})
    assert caught.value.exit_code == 5
    (entry,) = [json.loads(line) for line in offline.journal_path(tree).read_text().splitlines()]
    assert entry["kind"] == "call" and entry["what"] == "mail to bob"
    assert (entry["method"], entry["path"]) == ("POST", "/v1/mail")
    assert entry["body"] == {"to": "bob", "body": "hi"}
    assert entry["key"] == script.keys()[0]


def test_reads_and_answered_errors_are_never_journaled(tree):
    with pytest.raises(ServerUnreachable) as caught:
        make(tree, Script(refused(), refused(), refused())).mine()
    assert not isinstance(caught.value, Journaled)
    with pytest.raises(client_module.ClaimRejected):
        make(tree, Script((409, {"error": {"code": "claim_conflict", "message": "held"}}))).claim("bd-1")
    assert not offline.journal_path(tree).exists()


def test_the_next_command_replays_in_order_reports_and_keeps_what_was_refused(tree, capsys):
    down = Script(*[refused()] * 9)
    for call in (lambda c: c.claim("bd-1"), lambda c: c.claim("bd-2"), lambda c: c.close("bd-3")):
        with pytest.raises(Journaled):
            call(make(tree, down))
    sent_keys = [e["key"] for e in map(json.loads, offline.journal_path(tree).read_text().splitlines())]

    conflict = {"error": {"code": "claim_conflict", "message": "bd-2 is being worked on by bob (Bob)"}}
    up = Script((200, {}), (409, conflict), (200, {}), (200, {"alias": "ana"}))
    assert make(tree, up).whoami() == {"alias": "ana"}
    assert [(m, p) for m, p, _, _ in up.calls] == [
        ("POST", "/v1/beads/bd-1/claim"), ("POST", "/v1/beads/bd-2/claim"), ("POST", "/v1/beads/bd-3/close"),
        ("GET", "/v1/whoami")]
    assert up.keys()[:3] == sent_keys
    err = capsys.readouterr().err
    assert "replayed: claim bd-1 ok" in err and "replayed: close bd-3 ok" in err
    assert "not applied: claim bd-2: bd-2 is being worked on by bob (Bob)" in err
    assert not offline.journal_path(tree).exists()
    (kept,) = (tree / ".wire" / offline.REJECTED_FILE).read_text().splitlines()
    assert json.loads(kept)["error"]["code"] == "claim_conflict"


def test_a_replay_that_finds_the_server_still_down_keeps_everything_and_appends_after(tree):
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).claim("bd-1")
    still_down = Script(*[refused()] * 3)
    with pytest.raises(Journaled):
        make(tree, still_down).claim("bd-2")
    assert len(still_down.calls) == 3  # the replay's failure is not waited for a second time
    whats = [json.loads(line)["what"] for line in offline.journal_path(tree).read_text().splitlines()]
    assert whats == ["claim bd-1", "claim bd-2"]


def test_progress_is_recorded_after_each_answer(tree, monkeypatch):
    for ref in ("bd-1", "bd-2"):
        with pytest.raises(Journaled):
            make(tree, Script(*[refused()] * 3)).claim(ref)
    # the server answers the first entry, then goes away: only the second is left
    script = Script((200, {}), refused(retryable=False))
    with pytest.raises(ServerUnreachable):
        make(tree, script).whoami()
    whats = [json.loads(line)["what"] for line in offline.journal_path(tree).read_text().splitlines()]
    assert whats == ["claim bd-2"]


def test_a_torn_last_line_is_reported_and_does_not_block_the_rest(tree, capsys):
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).claim("bd-1")
    with offline.journal_path(tree).open("a") as fh:
        fh.write('{"v":1,"kind":"call","what":"claim bd-2"')  # killed mid-append
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).claim("bd-3")
    up = Script((200, {}), (200, {}), (200, {}))
    make(tree, up).whoami()
    err = capsys.readouterr().err
    assert "replayed: claim bd-1 ok" in err and "replayed: claim bd-3 ok" in err
    assert "damaged journal entry" in err


def test_an_offline_create_writes_the_beads_file_with_the_repos_prefix(tree):
    beads = tree / ".beads" / "issues.jsonl"
    beads.parent.mkdir()
    beads.write_text('{"id":"gt-abc1","title":"old"}\n')
    with pytest.raises(Journaled) as caught:
        make(tree, Script(*[refused()] * 3)).create_bead(
            {"title": "New", "priority": "high", "labels": ["x"], "blocked_by": ["gt-abc1"], "parent": None})
    ref = caught.value.details["id"]
    assert ref.startswith("gt-")
    record = json.loads(beads.read_text().splitlines()[-1])
    assert record["priority"] == 1 and record["status"] == "open" and record["labels"] == ["x"]
    assert record["dependencies"][0]["depends_on_id"] == "gt-abc1"
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).update_bead(ref, {"title": "Newer", "add_labels": ["y"]})
    record = json.loads(beads.read_text().splitlines()[-1])
    assert record["title"] == "Newer" and record["labels"] == ["x", "y"]
    entries = [json.loads(line) for line in offline.journal_path(tree).read_text().splitlines()]
    assert [(e["kind"], e["ids"]) for e in entries] == [("sync", [ref])]  # one sync for both edits
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).update_bead(ref, {"status": "closed"})
    kinds = [json.loads(line)["kind"] for line in offline.journal_path(tree).read_text().splitlines()]
    assert kinds == ["sync", "call"]


def test_a_refused_connection_is_worth_a_retry_and_a_timeout_is_not():
    import socket
    import threading

    from tests.servers import free_port

    with pytest.raises(ServerUnreachable) as refused_exc:
        client_module.http_transport("GET", f"http://127.0.0.1:{free_port()}/v1/health", None, {}, 2.0)
    assert refused_exc.value.retryable

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    try:
        with pytest.raises(ServerUnreachable) as slow:
            client_module.http_transport("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/", None, {}, 0.3)
        assert not slow.value.retryable and "timed out" in slow.value.message
    finally:
        for conn in accepted:
            conn.close()
        silent.close()


def test_the_sync_replayed_uploads_only_the_beads_edited_offline(tree, capsys):
    beads = tree / ".beads" / "issues.jsonl"
    beads.parent.mkdir()
    beads.write_text('{"id":"bd-old1","title":"stale here, newer on the server"}\n')
    refs = []
    for title in ("one", "two"):
        with pytest.raises(Journaled) as caught:
            make(tree, Script(*[refused()] * 3)).create_bead({"title": title})
        refs.append(caught.value.details["id"])
    answer = {"created": 2, "updated": 0, "unchanged": 0, "conflicts": [], "total": 2}
    up = Script((200, answer), (200, {"alias": "ana"}))
    make(tree, up).whoami()
    method, path, body, _ = up.calls[0]
    assert (method, path, body["mode"]) == ("POST", "/v1/sync", "incremental")
    assert [json.loads(line)["id"] for line in body["jsonl"].splitlines()] == refs
    assert "replayed: sync .beads/issues.jsonl ok (2 created" in capsys.readouterr().err


def test_a_replayed_claim_and_close_keep_the_worktrees_claims_in_step(tree):
    """`.wire/claims.json` (which beads this worktree's commits count for) follows the replay, as it
    follows a claim or close answered at once."""
    from cli import gitstate

    gitstate.record_claim(tree, "bd-3")  # claimed while the server was up
    down = Script(*[refused()] * 6)
    for call in (lambda c: c.claim("bd-1"), lambda c: c.close("bd-3")):
        with pytest.raises(Journaled):
            call(make(tree, down))
    assert set(gitstate.claims(tree)) == {"bd-3"}  # nothing the server has not answered yet

    up = Script((200, {"bead": {"id": "bd-1"}}), (200, {"bead": {"id": "bd-3"}}), (200, {"alias": "ana"}))
    make(tree, up).whoami()
    assert set(gitstate.claims(tree)) == {"bd-1"}
