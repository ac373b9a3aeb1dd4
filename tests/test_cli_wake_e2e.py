"""Wake on work end to end: a real `wire serve`, real `wire watch` and `wire wait-ready` processes in one
worktree, woken by a `wire close` in another worktree of the same repo (slow)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store.redis import make_client
from tests.browser import ROOT, wire_env
from tests.conftest import until_waiting
from tests.test_cli_e2e import Wire, make_repo

pytestmark = pytest.mark.slow

#: Seconds a woken process may take to answer after the close (a wait slice is 25 s: far more).
WAKE_WITHIN = 10.0
_projects = itertools.count(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("wake-stack"), workers=1, env={"PYTHONPATH": str(ROOT)})
    yield server
    server.stop()


class Agent(Wire):
    def spawn(self, *args: str) -> subprocess.Popen:
        """`wire ARGS` started in the background (a blocking wait)."""
        return subprocess.Popen([sys.executable, "-c", "from cli import main; main()", *args], cwd=self.cwd,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def pair(stack, tmp_path):
    """Two worktrees (clones of one origin) of a new project: alice (developer) and bob (backend)."""
    project, key, out = f"wake{next(_projects)}", None, []
    for i, (alias, role) in enumerate((("alice", "developer"), ("bob", "backend"))):
        repo = make_repo(tmp_path, f"clone{i}", "git@github.com:acme/shop.git")
        agent = Agent(repo, wire_env({"WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg{i}"),
                                  "HOME": str(tmp_path / f"home{i}")}))
        args = ["init", "--project", project, "--alias", alias, "--role", role]
        result = agent.json(*args, *(["--key", key] if key else []))
        key = key or result["project_key"]
        out.append(agent)
    return out


def finish(proc: subprocess.Popen, timeout: float = WAKE_WITHIN) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still waiting after {timeout} s: {out!r} {err!r}") from None
    return proc.returncode, out, err


def test_a_watch_and_a_wait_ready_wake_when_the_blocker_closes_in_another_worktree(pair, stack):
    alice, bob = pair
    blocker = alice.json("create", "Orders schema")["id"]
    dep = alice.json("create", "Orders page", "--blocked-by", blocker)["id"]
    bob("subscribe", dep)
    alice("claim", blocker)
    watch = bob.spawn("watch", "--timeout", "120")
    waiter = bob.spawn("wait-ready", dep, "--timeout", "120")
    redis = make_client(stack.redis_url)
    try:
        until_waiting(redis, count=2)  # both hold a waiter slot: up and waiting
    finally:
        redis.close()
    assert watch.poll() is None and waiter.poll() is None  # a wait that answered at once would have exited
    alice("close", blocker)
    code, out, err = finish(waiter)
    assert code == 0, (out, err)
    assert out.splitlines() == [f"{dep} is ready: Orders page", f"-> take it: wire claim {dep}"]
    code, out, err = finish(watch)
    assert code == 0, (out, err)
    assert out.splitlines()[0] == f"woke: {dep} is ready (you subscribed)"
    assert f"take it: wire claim {dep}" in out


def test_watch_ready_misses_nothing_between_two_watches_and_follows_roles(pair):
    alice, bob = pair
    first = bob("watch", "--ready", "--timeout", "1", code=6)  # nothing yet; the cursor is kept
    assert "nothing arrived" in first.stderr
    assert (bob.cwd / ".wire" / "ready-cursor").is_file()
    api = alice.json("create", "Orders API", "--role", "backend")["id"]  # while nobody watches
    code, out, err = finish(bob.spawn("watch", "--ready", "--timeout", "60"))
    assert code == 0, (out, err)
    assert out.splitlines()[0] == f"woke: {api} is ready (new work, role:backend)"
    watch = bob.spawn("watch", "--ready", "--timeout", "120")
    time.sleep(3)
    assert watch.poll() is None  # what it reported before does not wake it again
    alice("settings", "--ready-scope", "role", "--key", _project_key(alice), code=0)
    alice.json("create", "Orders form", "--role", "frontend")  # not bob's work under scope "role"
    docs = alice.json("create", "Orders docs")["id"]  # unroled: anyone's
    code, out, err = finish(watch)
    assert code == 0, (out, err)
    assert out.splitlines()[0] == f"woke: {docs} is ready (new work in your repo)"


def test_wait_ready_times_out_with_exit_6_and_says_why(pair):
    alice, bob = pair
    blocker = alice.json("create", "Schema")["id"]
    alice("claim", blocker)
    dep = alice.json("create", "Page", "--blocked-by", blocker)["id"]
    started = time.monotonic()
    proc = bob("wait-ready", dep, "--timeout", "2", code=6)
    assert time.monotonic() - started < 20
    assert f"{dep} is still not ready after 2 s: blocked by {blocker} (in_progress)" in proc.stderr
    ready = bob("wait-ready", blocker, "--timeout", "2", code=6)  # claimed: not ready either
    assert "claimed" in ready.stderr


def test_roles_round_trip_through_the_beads_file_and_order_ready(pair):
    alice, bob = pair
    api = alice.json("create", "API", "--role", "backend", "-p", "2")["id"]
    page = alice.json("create", "Page", "--role", "frontend", "-p", "1")["id"]
    assert '"role:backend"' in (alice.cwd / ".beads" / "issues.jsonl").read_text()
    lines = bob("ready").stdout.splitlines()
    assert lines[0].split()[0] == api and "[role:" not in lines[0]
    assert lines[1].split()[0] == page and "[role:frontend] Page" in lines[1]
    assert [b["id"] for b in bob.json("ready", "--role", "frontend")] == [page]
    alice("update", page, "--role", "backend")
    assert "role:backend" in alice.json("show", page)["labels"]
    assert bob("ready", "--role", "not a role", code=2)


def _project_key(agent: Wire) -> str:
    import json

    keys = json.loads((Path(agent.env["WIRE_CONFIG_DIR"]) / "keys.json").read_text())
    return next(iter(keys.values()))
