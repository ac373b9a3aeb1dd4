"""Offline work end to end: the real `wire` CLI against gunicorn + a Dramatiq worker + a real Redis and
SQLite, the web process stopped and started again on the same address while agents keep working."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_cli_e2e import Wire, make_repo

pytestmark = pytest.mark.slow

ORIGIN = "git@github.com:acme/shop.git"
ROOT = Path(__file__).resolve().parents[1]


class Site:
    """One Redis, one SQLite file, a worker, and a web process that can be stopped and restarted."""

    def __init__(self, tmp: Path) -> None:
        from tests.servers import free_port, run_release, start_redis, start_worker

        self.tmp = tmp
        self.redis = start_redis(tmp)
        self.env = {"REDIS_URL": self.redis.url, "DATABASE_URL": f"sqlite:///{tmp / 'beadwire.db'}",
                    "BEADWIRE_DATA_DIR": str(tmp)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = self.worker = None
        try:
            run_release(self.env)
            self.worker = start_worker(tmp, self.env)
            self.start()
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        from tests.servers import start_web

        self.web = start_web(self.tmp, self.port, self.env)

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None

    def close(self) -> None:
        self.stop()
        if self.worker is not None:
            self.worker.stop()
        self.redis.stop()


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.close()


@pytest.fixture
def team(site, tmp_path):
    """alice and bob, each in a clone of the same origin, in one project."""
    wires, key = [], None
    for name in ("alice", "bob"):
        repo = make_repo(tmp_path, name, ORIGIN)
        env = {**os.environ, "WIRE_URL": site.url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg-{name}"),
               "HOME": str(tmp_path / f"home-{name}"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        for var in ("WIRE_JSON", "WIRE_PROJECT_KEY"):
            env.pop(var, None)
        wire = Wire(repo, env)
        args = ["init", "--project", "offline", "--alias", name, "--human", name.title()]
        result = wire.json(*args, *(["--key", key] if key else []))
        key = key or result["project_key"]
        wires.append(wire)
    return wires


def journal(wire: Wire) -> list[dict]:
    path = wire.cwd / ".wire" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def mails_from(wire: Wire, sender: str) -> list[str]:
    return [m["body"] for m in wire.json("mail", "list", "--from", sender) if m.get("kind", "mail") == "mail"]


def test_claims_and_mail_made_offline_are_applied_later_and_a_lost_claim_is_reported(site, team):
    alice, bob = team
    mine = alice.json("create", "Fix login")["id"]
    contested = alice.json("create", "Fix logout")["id"]
    site.stop()

    for args in (("claim", mine), ("mail", "send", "bob", "back in five"), ("claim", contested)):
        proc = alice(*args, code=5)
        assert "warning:" in proc.stderr and ".wire/journal.jsonl" in proc.stderr, proc.stderr
    assert [e["what"] for e in journal(alice)] == [f"claim {mine}", "mail to bob", f"claim {contested}"]
    assert len({e["key"] for e in journal(alice)}) == 3

    site.start()
    bob("claim", contested)  # while alice is away: her journaled claim of it now conflicts

    proc = alice("status")
    assert f"replayed: claim {mine} ok" in proc.stderr
    assert "replayed: mail to bob ok" in proc.stderr
    assert f"not applied: claim {contested}: {contested} is being worked on by bob (Bob)" in proc.stderr
    assert "alice" in proc.stdout  # the command itself still ran
    assert journal(alice) == []
    rejected = (alice.cwd / ".wire" / "journal.rejected.jsonl").read_text().splitlines()
    assert [json.loads(r)["what"] for r in rejected] == [f"claim {contested}"]

    assert bob.json("show", mine)["claim"]["alias"] == "alice"
    assert bob.json("show", contested)["claim"]["alias"] == "bob"
    assert mails_from(bob, "alice") == ["back in five"]
    # nothing left to replay: the next command says nothing about it
    assert "replayed" not in alice("whoami").stderr


def test_a_replay_killed_before_it_recorded_progress_applies_nothing_twice(site, team):
    alice, bob = team
    site.stop()
    alice("mail", "send", "bob", "exactly once", code=5)
    alice("mail", "send", "bob", "and this once too", code=5)
    saved = alice.cwd / "journal.saved"
    shutil.copy(alice.cwd / ".wire" / "journal.jsonl", saved)

    site.start()
    first = alice("whoami")
    assert first.stderr.count("replayed: mail to bob ok") == 2
    # a replay killed after the server answered but before the journal was rewritten leaves the
    # journal as it was: put it back, and replay again
    shutil.copy(saved, alice.cwd / ".wire" / "journal.jsonl")
    again = alice("whoami")
    assert again.stderr.count("replayed: mail to bob ok") == 2
    assert sorted(mails_from(bob, "alice")) == ["and this once too", "exactly once"]


def test_a_bead_created_offline_goes_to_the_beads_file_and_reaches_the_server(site, team):
    alice, bob = team
    site.stop()
    made = alice.json("create", "Write offline docs", "-p", "P1", "-l", "docs", code=5)
    ref = made["error"]["id"]
    assert made["error"]["code"] == "offline"
    record = json.loads((alice.cwd / ".beads" / "issues.jsonl").read_text().splitlines()[-1])
    assert record["id"] == ref and record["title"] == "Write offline docs" and record["priority"] == 1
    alice("update", ref, "--title", "Write the offline docs", code=5)
    alice("claim", ref, code=5)
    assert [e["kind"] for e in journal(alice)] == ["sync", "call"]

    site.start()
    proc = alice("ready")
    assert "replayed: sync .beads/issues.jsonl ok (1 created" in proc.stderr, proc.stderr
    assert f"replayed: claim {ref} ok" in proc.stderr
    shown = bob.json("show", ref)
    assert shown["title"] == "Write the offline docs" and shown["claim"]["alias"] == "alice"
    assert shown["labels"] == ["docs"]
    # applied once, and the replayed claim written through: one line, as the server has it
    lines = [json.loads(line) for line in (alice.cwd / ".beads" / "issues.jsonl").read_text().splitlines()]
    assert [(r["id"], r["status"], r["title"]) for r in lines] == [
        (ref, "in_progress", "Write the offline docs")]
    assert [b["id"] for b in bob.json("list", "--all")] == [ref]
    assert alice.json("sync")["created"] == 0


def test_a_replay_killed_midway_loses_nothing_and_applies_nothing_twice(site, team):
    import signal
    import subprocess
    import sys
    import time

    alice, bob = team
    site.stop()
    bodies = [f"note {i:02d}" for i in range(12)]
    for body in bodies:
        alice("mail", "send", "bob", body, code=5)
    assert len(journal(alice)) == len(bodies)

    site.start()
    replaying = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "whoami"],
                                 cwd=alice.cwd, env=alice.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # kill it as soon as it has made progress (wherever it is then: sending, rewriting the journal...)
    while replaying.poll() is None and len(journal(alice)) == len(bodies) and time.monotonic() < deadline:
        time.sleep(0.01)
    replaying.send_signal(signal.SIGKILL)
    replaying.wait()

    alice("whoami")  # the next command finishes the replay
    assert journal(alice) == []
    assert sorted(mails_from(bob, "alice")) == bodies


class AnswerDropper:
    """A TCP proxy in front of the web process that, for the first request matching `target`, lets the
    server answer and then hangs up on the client without passing the answer on (a lost response)."""

    def __init__(self, upstream_port: int, target: bytes) -> None:
        import socket
        import threading

        self.upstream_port, self.target, self.dropped = upstream_port, target, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn) -> None:
        import socket

        with conn, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            request = _read_message(conn)
            upstream.sendall(request)
            answer = _read_message(upstream)
            if request.startswith(self.target) and not self.dropped:
                self.dropped += 1
                return  # the server applied it; the client never hears
            conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()


def _read_message(sock) -> bytes:
    """One HTTP/1.1 message (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_write_whose_answer_is_lost_is_retried_and_applied_once(site, team):
    alice, bob = team
    proxy = AnswerDropper(site.port, b"POST /v1/mail ")
    try:
        through_proxy = Wire(alice.cwd, {**alice.env, "WIRE_URL": proxy.url})
        sent = through_proxy.json("mail", "send", "bob", "said once")
        assert proxy.dropped == 1  # the first answer was lost, the retry's answer came through
    finally:
        proxy.close()
    assert sent["recipients"] == ["bob"]
    assert mails_from(bob, "alice") == ["said once"]
    assert journal(alice) == []
