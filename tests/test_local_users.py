"""Other local users of the machine `wire serve` runs on: they can read nothing in its data directory
and cannot use its bundled Redis (a password they cannot read, CONFIG disabled)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from tests.servers import start_stack


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _redis_port(data_dir: Path) -> int:
    conf = (data_dir / "redis" / "redis.conf").read_text()
    return int(next(line.split()[1] for line in conf.splitlines() if line.startswith("port ")))


def _resp(port: int, *commands: list[str]) -> bytes:
    """Send RESP commands on a fresh connection; the raw replies."""
    payload = b"".join(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in c)
                       for c in commands)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"\r\n") < len(commands):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    try:
        server = start_stack(tmp_path_factory.mktemp("local"), workers=1)
    except Exception as exc:  # noqa: BLE001 - never a skip: a stack that cannot start is a failure
        pytest.fail(f"wire serve could not start: {exc}")
    yield server
    server.stop()


@pytest.mark.slow
def test_the_data_directory_and_everything_serve_keeps_in_it_is_private_to_its_user(stack):
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", int(stack.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("POST", "/v1/init", json.dumps({"project": "p", "repo_origin": "git@github.com:a/b.git"}),
                 {"Content-Type": "application/json"})
    assert conn.getresponse().status == 201  # a write: the database and its WAL exist now
    conn.close()
    data = stack.data_dir
    assert _mode(data) == 0o700 and _mode(data / "redis") == 0o700
    kept = [data / "beadwire.db", data / "beadwire.db-wal", data / "serve.pid", data / "redis.password",
            data / "admin.token", data / "redis" / "redis.conf", data / "redis" / "redis.log"]
    kept += [p for p in (data / "redis").rglob("appendonly*") if p.is_file()]
    assert any(p.name.startswith("appendonly") for p in kept), "no AOF file was written"
    # serve.log is the test harness's own redirect of wire serve's output, not a file wire serve makes
    loose = {str(p.relative_to(data)): oct(_mode(p)) for p in kept if _mode(p) & 0o077}
    assert loose == {}, f"readable by others: {loose}"


def _read_as_other_user(path: Path) -> str:
    """What reading `path` as an unprivileged local user (`cat`) gives: "read" or "PermissionError"."""
    import subprocess

    from tests.servers import _ensure_pg_user

    account = _ensure_pg_user()
    done = subprocess.run(["cat", str(path)], user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                          capture_output=True, text=True, timeout=30, check=False, cwd="/")
    if done.returncode == 0:
        return "read"
    return "PermissionError" if "Permission denied" in done.stderr else done.stderr.strip()


@pytest.mark.slow
def test_the_bundled_redis_refuses_a_client_without_its_password_and_has_no_config_command(stack):
    port = _redis_port(stack.data_dir)
    assert _resp(port, ["PING"]).startswith(b"-NOAUTH")
    assert _resp(port, ["SET", "bw:{p:1}:session:x", "{}"]).startswith(b"-NOAUTH")  # no session forging
    password = (stack.data_dir / "redis.password").read_text().strip()
    assert _resp(port, ["AUTH", "wrong"], ["PING"]).startswith(b"-WRONGPASS")
    replies = _resp(port, ["AUTH", password], ["PING"], ["CONFIG", "SET", "requirepass", ""])
    assert replies.startswith(b"+OK\r\n+PONG\r\n-ERR unknown command")
    assert b"redis://" not in (stack.data_dir / "serve.log").read_bytes().replace(b"redis://:***@", b"")


def test_an_existing_data_directory_is_made_private_on_start():
    import shutil
    import tempfile

    from cli.serve import _make_private

    base = Path(tempfile.mkdtemp(prefix="bw-local-"))  # in /tmp, which every local user may cross
    try:
        base.chmod(0o755)
        data = base / "data"
        (data / "redis").mkdir(parents=True)
        for path in (data / "beadwire.db", data / "redis" / "appendonly.aof"):
            path.write_text("x")
            path.chmod(0o644)
        data.chmod(0o755)
        (data / "redis").chmod(0o755)
        if os.geteuid() == 0:  # as root (CI), another local user really reads it before
            assert _read_as_other_user(data / "beadwire.db") == "read"
        _make_private(str(data))
        assert [oct(_mode(p)) for p in (data, data / "redis")] == ["0o700", "0o700"]
        files = (data / "beadwire.db", data / "redis" / "appendonly.aof")
        assert [oct(_mode(p)) for p in files] == ["0o600"] * 2
        assert os.access(data / "beadwire.db", os.R_OK)
        if os.geteuid() == 0:  # ...and not after
            assert _read_as_other_user(data / "beadwire.db") == "PermissionError"
    finally:
        shutil.rmtree(base)
