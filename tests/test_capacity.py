"""Capacity and exposure on a real `wire serve` (gunicorn's gevent worker, web/worker.py): more idle
waiters than the old thread pool had do not freeze the server, a client that trickles its headers or
its body is cut off, and a server on a non-loopback listener wants the admin token to create a project.
The 5,000-waiter figure is a benchmark (bench/waiters.py), not a test.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import signal
import socket
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.servers import start_stack

ORIGIN = "git@github.com:acme/shop.git"
#: Waiters held at once: more than the 2 x 32 threads of the gthread server this replaced.
WAITERS = 80
#: Deadlines the stack runs with (small, so the slow-client tests are short).
HEADER_TIMEOUT, BODY_TIMEOUT = 2, 3


def call(url: str, method: str, path: str, bearer: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, Any]:
    """One request on a fresh connection; a server that does not answer within `timeout` fails it."""
    host, port = url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {bearer}"} if bearer else {}),
            **(headers or {})}
    try:
        payload = json.dumps(body if body is not None else {}) if method != "GET" else None
        conn.request(method, path, payload, sent)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    env = {"BEADWIRE_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "BEADWIRE_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    try:
        server = start_stack(tmp_path_factory.mktemp("capacity"), workers=2, env=env)
    except Exception as exc:  # noqa: BLE001 - never a skip: a stack that cannot start is a failure
        pytest.fail(f"wire serve could not start: {exc}")
    yield server
    server.stop()


def register(url: str, project: str, n: int) -> list[dict]:
    """`n` workspaces of a new project: their init answers."""
    status, first = call(url, "POST", "/v1/init",
                         body={"project": project, "repo_origin": ORIGIN, "alias": "w0"})
    assert status == 201, first
    joined = [first]
    for i in range(1, n):
        status, answer = call(url, "POST", "/v1/init", first["project_key"],
                              {"project": project, "repo_origin": ORIGIN, "alias": f"w{i}"})
        assert status == 201, answer
        joined.append(answer)
    return joined


def open_waiter(url: str, kind: str, token: str, partner: str) -> socket.socket:
    """A socket whose request waits on the server: a websocket (upgraded) or a 30 s long poll."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    if kind == "ws":
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        assert sock.recv(12) == b"HTTP/1.1 101", "the websocket was not accepted"
        return sock
    path = "/v1/watch?timeout=30" if kind == "watch" else f"/v1/chat/wait?with={partner}&timeout=30"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


def read_answer(sock: socket.socket) -> tuple[int, Any]:
    """One whole HTTP/1.1 answer from `sock`: status and JSON body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def held_waiters(stack, project_id: int) -> int:
    """Waiter slots the project holds (store/waiters.py), read from the stack's own Redis."""
    from store.keys import Keys
    from store.redis import make_client

    client = make_client(stack.redis_url)
    try:
        return int(client.zcard(Keys().waiters_key(project_id)))
    finally:
        client.close()


@pytest.mark.slow
def test_health_a_claim_and_mail_still_answer_while_more_waiters_wait_than_the_old_thread_pool_had(stack):
    team = register(stack.url, "busy", 10)
    aliases = [t["workspace"]["alias"] for t in team]
    kinds = ["ws", "watch", "chat"]
    socks = [open_waiter(stack.url, kinds[i % 3], team[i % 10]["token"], aliases[(i + 1) % 10])
             for i in range(WAITERS)]
    try:
        project = team[0]["project"]["id"]
        deadline = time.monotonic() + 30
        while held_waiters(stack, project) < WAITERS:  # every one of them is waiting on the server now
            assert time.monotonic() < deadline, (
                f"only {held_waiters(stack, project)} waiters reached the server")
            time.sleep(0.05)
        assert call(stack.url, "GET", "/v1/health")[0] == 200
        assert call(stack.url, "POST", "/v1/beads", team[1]["token"], {"title": "Cart total"})[0] == 201
        status, bead = call(stack.url, "GET", "/v1/ready", team[1]["token"])
        assert call(stack.url, "POST", f"/v1/beads/{bead[0]['id']}/claim", team[1]["token"])[0] == 200
        # and a waiter still wakes: mail to w1, three of whose watches wait (one of them gets it)
        mail = {"to": aliases[1], "body": "wake up"}
        assert call(stack.url, "POST", "/v1/mail", team[0]["token"], mail)[0] == 201
        watches = [socks[i] for i in range(WAITERS) if i % 10 == 1 and kinds[i % 3] == "watch"]
        readable, _, _ = select.select(watches, [], [], 20)
        assert len(readable) == 1, "the mail woke no watch of its recipient, or several"
        status, body = read_answer(readable[0])
        assert status == 200 and [item["kind"] for item in body["items"]] == ["mail"], body
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.slow
def test_a_client_that_trickles_its_headers_is_disconnected(stack):
    port = int(stack.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    closed_after = None
    for line in range(60):  # a header line every 0.5 s, for 30 s unless the server hangs up first
        try:
            sock.sendall(f"X-Slow-{line}: 1\r\n".encode())
        except OSError:
            closed_after = line
            break
        time.sleep(0.5)
    sock.close()
    assert closed_after is not None, "the server kept a connection open whose headers never ended"
    assert closed_after * 0.5 < 30


@pytest.mark.slow
def test_a_body_that_does_not_arrive_in_time_gets_408_and_writes_nothing(stack):
    ana = register(stack.url, "slowbody", 1)[0]
    port = int(stack.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST /v1/beads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ana['token']}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"title\": \"half").encode())
    status, body = read_answer(sock)
    sock.close()
    assert status == 408 and body["error"]["code"] == "request_timeout", body
    assert call(stack.url, "GET", "/v1/beads", ana["token"])[1] == []


def _unix_call(path: str, method: str, route: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("localhost", timeout=10)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.connect(path)
    try:
        conn.request(method, route, json.dumps(body) if body is not None else None,
                     {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.mark.slow
def test_a_server_not_bound_to_loopback_wants_the_admin_token_to_create_a_project(tmp_path: Path):
    # a Unix socket stands in for 0.0.0.0 (tests bind nothing beyond loopback): gunicorn then takes
    # SERVER_NAME from the caller's Host header, so the app must count it as exposed whatever it says
    from tests.servers import ServerProc, _child_env, _running, _spawn, run_release, start_redis, wait_until

    redis = start_redis(tmp_path)
    env = {"REDIS_URL": redis.url, "DATABASE_URL": f"sqlite:///{tmp_path / 'bw.db'}",
           "BEADWIRE_DATA_DIR": str(tmp_path), "BEADWIRE_ADMIN_TOKEN": "bw_admin_test"}
    run_release(env)
    sock_path = str(tmp_path / "web.sock")
    args = [sys.executable, "-m", "gunicorn", "-k", "web.worker.Worker", "-w", "1", "-b", f"unix:{sock_path}",
            "web:create_app()"]
    proc = _spawn(args, tmp_path / "web.log", signal.SIGTERM, env=_child_env(env))
    web = ServerProc("web", proc, tmp_path / "web.log")
    _running.append(web)
    try:
        wait_until(lambda: os.path.exists(sock_path) and _unix_call(sock_path, "GET", "/v1/health")[0] == 200,
                    proc, "gunicorn on a unix socket", tmp_path / "web.log")
        body = {"project": "open", "repo_origin": ORIGIN}
        status, refused = _unix_call(sock_path, "POST", "/v1/init", body, {"Host": "localhost"})
        assert status == 403 and "admin token" in refused["error"]["message"]
        status, made = _unix_call(sock_path, "POST", "/v1/init", body,
                                  {"X-Wire-Admin-Token": "bw_admin_test"})
        assert status == 201 and made["project_key"]
    finally:
        web.stop()
        redis.stop()


@pytest.mark.slow
def test_every_answer_is_dated_with_the_second_it_was_sent_in(stack):
    host, port = stack.url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(3):  # one kept-alive connection: the Date is not the connection's first
            before = int(time.time())
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            response.read()
            after = int(time.time())
            date = response.getheader("Date") or ""
            assert date.endswith(" GMT") and before <= parsedate_to_datetime(date).timestamp() <= after, date
    finally:
        conn.close()
