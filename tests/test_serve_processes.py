"""The processes `wire serve` runs: gunicorn (master + workers) and ONE worker process that also runs the
clock (actors/run.py), no separate clock or Dramatiq supervisor; the clock's sweeps still fire, and
SIGTERM stops the worker through Dramatiq's graceful shutdown."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import _tail, run_release, start_child, start_redis, start_stack

#: Seconds to poll for something that happens within a few seconds on an idle machine.
DEADLINE = 90.0


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live descendant of `root`."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            try:
                out[pid] = (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
            todo.append(pid)
    return out


def _poll(condition, what: str, log: Path):
    deadline = time.monotonic() + DEADLINE
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{_tail(log, 60)}")
        time.sleep(0.2)
    return value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    try:
        server = start_stack(tmp_path_factory.mktemp("serve"), workers=2)
    except Exception as exc:  # noqa: BLE001 - never a skip: a stack that cannot start is a failure
        pytest.fail(f"wire serve could not start: {exc}")
    yield server
    server.stop()


@pytest.mark.slow
def test_wire_serve_runs_gunicorn_and_one_worker_process_with_the_clock_inside(stack):
    tree = _descendants(stack.pid)
    web = [cmd for cmd in tree.values() if "gunicorn" in cmd]
    workers = [cmd for cmd in tree.values() if "-m actors.run" in cmd]
    assert len(web) == 3, tree  # the master and --workers 2
    assert len(workers) == 1 and "--clock" in workers[0], tree
    assert not [cmd for cmd in tree.values() if "actors.clock" in cmd or "dramatiq" in cmd], tree
    python = [cmd for cmd in tree.values() if "redis-server" not in cmd]
    assert len(python) == 4, tree


@pytest.mark.slow
def test_the_clock_inside_the_worker_sends_the_periodic_sweeps_and_the_worker_runs_them(stack):
    import redis

    from store.config import DEFAULT_NAMESPACE
    from store.keys import Keys

    client = redis.Redis.from_url(stack.redis_url)
    keys = Keys(DEFAULT_NAMESPACE)
    try:
        # each sweep takes its lease in Redis when the worker runs it; the clock sends them all at once
        # on start and the reservation sweep every 15 s (its lease lasts 10 s)
        for name in ("presence", "stale-claims", "idle-claims", "reservations"):
            _poll(lambda name=name: client.exists(keys.sweep_lock_key(name)), f"the {name} sweep", stack.log)
    finally:
        client.close()


@pytest.mark.slow
def test_sigterm_stops_wire_serve_and_its_worker_gracefully(tmp_path: Path):
    server = start_stack(tmp_path, workers=1)
    tree = _descendants(server.pid or 0)
    server.stop()
    log = server.log.read_text()
    assert "Worker has been shut down." in log, log[-4000:]  # Dramatiq's worker.stop() ran to its end
    assert "did not stop within" not in log, log[-4000:]
    assert not [pid for pid in tree if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]]


@pytest.mark.slow
def test_the_worker_process_stops_on_sigterm_after_its_messages_and_exits_0(tmp_path: Path):
    redis_server = start_redis(tmp_path)
    env = {"REDIS_URL": redis_server.url, "DATABASE_URL": f"sqlite:///{tmp_path / 'beadwire.db'}",
           "BEADWIRE_DATA_DIR": str(tmp_path)}
    try:
        run_release(env)
        args = [sys.executable, "-m", "actors.run", "--threads", "2", "--clock", "--shutdown-ms", "5000"]
        worker = start_child("worker", args, tmp_path, env, lambda s: "ready for action" in _tail(s.log, 200))
        proc: subprocess.Popen[bytes] | None = worker._proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(DEADLINE)
        worker.stop()
        log = worker.log.read_text()
        assert code == 0, log
        assert "Stopping worker process..." in log and "Worker has been shut down." in log, log
    finally:
        redis_server.stop()


def test_the_worker_entry_point_takes_the_procfile_settings():
    from actors.run import parse_args

    args = parse_args(["--threads", "8", "--shutdown-ms", "25000", "--clock"])
    assert (args.threads, args.shutdown_ms, args.clock) == (8, 25000, True)
    assert not parse_args([]).clock



def test_the_clock_sends_every_sweep_on_its_first_tick_and_tags_its_warnings(monkeypatch, caplog):
    import threading

    from actors import clock

    stop = threading.Event()
    sent: list[str] = []

    class Sweep:
        def __init__(self, name: str, fails: bool = False) -> None:
            self.actor_name, self.fails = name, fails

        def send(self) -> None:
            sent.append(self.actor_name)
            if self.fails:
                stop.set()  # one tick is enough
                raise ConnectionError("redis is away")

    schedule = ((Sweep("often"), 5), (Sweep("rarely"), 3600), (Sweep("x", True), 60))
    monkeypatch.setattr(clock, "SCHEDULE", schedule)
    with caplog.at_level("WARNING", logger="beadwire.clock"):
        clock.run(stop)
    assert sent == ["often", "rarely", "x"]
    [record] = caplog.records
    assert record.getMessage() == "could not enqueue x" and record.process_kind == "clock"
