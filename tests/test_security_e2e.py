"""Key rotation and revocation on a real `wire serve` (gunicorn with two workers, each with its own
auth cache): the old key and the revoked token are refused by every process from the next request
on, and no key or token reaches the server's logs.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from tests.servers import start_stack


def call(url: str, method: str, path: str, bearer: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One request on a fresh connection (so gunicorn spreads them over its workers)."""
    host, port = url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    headers = {"Content-Type": "application/json", **auth}
    try:
        payload = json.dumps(body if body is not None else {}) if method != "GET" else None
        conn.request(method, path, payload, headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture
def stack(tmp_path: Path):
    try:
        # INFO with JSON lines turns the access log on: it must not carry a secret either
        server = start_stack(tmp_path, workers=2, env={"BEADWIRE_LOG_LEVEL": "INFO", "LOG_FORMAT": "json"})
    except Exception as exc:  # noqa: BLE001 - never a skip: a stack that cannot start is a failure
        pytest.fail(f"wire serve could not start: {exc}")
    yield server
    server.stop()


@pytest.mark.slow
def test_rotation_and_revocation_reach_every_web_process_at_once(stack):
    url = stack.url
    body = {"project": "shop", "repo_origin": "git@github.com:acme/shop.git", "alias": "ana"}
    status, ana = call(url, "POST", "/v1/init", body=body)
    assert status == 201, ana
    key = ana["project_key"]
    status, bob = call(url, "POST", "/v1/init", key, {**body, "alias": "bob"})
    assert status == 201, bob
    # warm every worker's auth cache with both tokens and check the key works everywhere
    for _ in range(20):
        assert call(url, "GET", "/v1/whoami", bob["token"])[0] == 200
        assert call(url, "GET", "/v1/project/webhook", key)[0] == 200
    status, rotated = call(url, "POST", "/v1/project/key/rotate", key)
    assert status == 200
    new = rotated["project_key"]
    assert {call(url, "GET", "/v1/project/webhook", key)[0] for _ in range(20)} == {401}
    assert {call(url, "GET", "/v1/project/webhook", new)[0] for _ in range(5)} == {200}
    status, revoked = call(url, "POST", "/v1/workspaces/bob/revoke", new)
    assert status == 200 and revoked["revoked"] is True
    answers = [call(url, "GET", "/v1/whoami", bob["token"]) for _ in range(20)]
    assert {status for status, _ in answers} == {401}
    assert all("revoked" in answer["error"]["message"] for _, answer in answers)
    assert {call(url, "GET", "/v1/whoami", ana["token"])[0] for _ in range(5)} == {200}
    logs = "\n".join(p.read_text(errors="replace") for p in Path(stack.data_dir).rglob("*.log"))
    assert "/v1/workspaces/bob/revoke" in logs  # the access log was on, and read
    for secret in (ana["token"], bob["token"], key, new):
        assert secret not in logs
