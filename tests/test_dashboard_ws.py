"""`/v1/ws` on real gunicorn processes against a real Redis: the feed comes from the Redis event
stream, so a socket on one web process sees what another process wrote; auth happens before the
upgrade; `?since=` resumes without a gap.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import simple_websocket

pytestmark = pytest.mark.slow
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def webs(redis_server, tmp_path_factory):
    """Two gunicorn web processes sharing one Redis and one SQLite file (no worker: inline publish)."""
    from tests.servers import free_port, run_release, start_web

    tmp = tmp_path_factory.mktemp("ws")
    env = {"REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/5",
           "DATABASE_URL": f"sqlite:///{tmp / 'bw.db'}",
           "BEADWIRE_DATA_DIR": str(tmp), "BEADWIRE_NAMESPACE": f"ws{time.time_ns()}"}
    run_release(env)
    procs = [start_web(tmp, free_port(), env) for _ in range(2)]
    yield procs
    for proc in procs:
        proc.stop()


def call(base: str, method: str, path: str, token: str = "", body: dict | None = None) -> dict:
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with _no_proxy.open(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def join(base: str, project: str, alias: str, key: str = "") -> dict:
    body = {"project": project, "repo_origin": "git@github.com:acme/ws.git", "alias": alias}
    return call(base, "POST", "/v1/init", key, body)


class FeedClient(simple_websocket.Client):
    """simple-websocket's client leaves frames that arrive in the same read as the handshake answer
    unprocessed until more data comes; a resumed feed sends its backlog exactly then."""

    def handshake(self) -> None:
        try:
            super().handshake()
        except BaseException:
            self.sock.close()  # a refused handshake leaves its socket open otherwise
            raise
        self._handle_events()


def connect(base: str, token: str = "", path: str = "/v1/ws", **headers: str) -> simple_websocket.Client:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return FeedClient.connect(base.replace("http", "ws", 1) + path, headers={**auth, **headers})


def frames_until(ws: simple_websocket.Client, kind: str, deadline: float = 10.0) -> list[dict]:
    got, end = [], time.monotonic() + deadline
    while time.monotonic() < end:
        raw = ws.receive(timeout=max(end - time.monotonic(), 0.1))
        if raw is None:
            continue
        got.append(json.loads(raw))
        if got[-1]["kind"] == kind:
            return got
    pytest.fail(f"no {kind} frame within {deadline} s; got {[f['kind'] for f in got]}")


def test_a_socket_on_one_web_process_sees_a_claim_made_through_another(webs):
    one, two = (w.url for w in webs)
    alice = join(one, "scale", "alice")
    bob = join(two, "scale", "bob", alice["project_key"])
    ws = connect(one, alice["project_key"])
    try:
        bead = call(two, "POST", "/v1/beads", bob["token"], {"title": "Cross-process"})["id"]
        call(two, "POST", f"/v1/beads/{bead}/claim", bob["token"])
        frame = frames_until(ws, "claim.created")[-1]
        assert frame["data"]["bead"] == bead and frame["data"]["alias"] == "bob"
        assert set(frame) == {"id", "kind", "data"} and "-" in frame["id"]
    finally:
        ws.close()


def test_since_resumes_after_a_stream_id_without_a_gap(webs):
    one = webs[0].url
    alice = join(one, "resume", "alice")
    ws = connect(one, alice["token"])
    first = call(one, "POST", "/v1/beads", alice["token"], {"title": "one"})["id"]
    seen = frames_until(ws, "bead.created")[-1]
    ws.close()
    call(one, "POST", "/v1/beads", alice["token"], {"title": "two"})  # while disconnected
    again = connect(one, alice["token"], f"/v1/ws?since={seen['id']}")
    try:
        missed = frames_until(again, "bead.created")[-1]
        assert missed["data"]["bead"] != first and missed["id"] > seen["id"]
    finally:
        again.close()


def test_an_agents_socket_carries_other_agents_mail_as_metadata_only(webs):
    one = webs[0].url
    alice = join(one, "private", "alice")
    bob = join(one, "private", "bob", alice["project_key"])
    join(one, "private", "carol", alice["project_key"])
    ws = connect(one, bob["token"])
    try:
        call(one, "POST", "/v1/mail", alice["token"],
             {"to": "carol", "subject": "plan", "body": "secret plan"})
        call(one, "POST", "/v1/mail", alice["token"], {"to": "bob", "body": "hello bob"})
        frames = [f for f in frames_until(ws, "mail") if f["kind"] == "mail"]
        frames += [] if len(frames) == 2 else [f for f in frames_until(ws, "mail") if f["kind"] == "mail"]
        other, own = frames
        assert other["data"]["redacted"] is True and other["data"]["from"] == "alice"
        assert ("body" not in other["data"] and "subject" not in other["data"]
                and other["data"]["to"] == ["carol"])
        assert own["data"]["body"] == "hello bob"
    finally:
        ws.close()


@pytest.mark.parametrize("token, path, status", [
    ("", "/v1/ws", 401),
    ("bw_ws_forged", "/v1/ws", 401),
    ("bw_pk_forged", "/v1/ws", 401),
    (None, "/v1/ws?since=yesterday", 400),
])
def test_a_socket_is_refused_before_the_upgrade(webs, token, path, status):
    one = webs[0].url
    if token is None:
        token = join(one, f"refuse{status}", "alice")["token"]
    with pytest.raises(simple_websocket.ConnectionError) as info:
        connect(one, token, path)
    assert info.value.status_code == status


def test_a_dashboard_cookie_from_another_site_is_refused(webs):
    one = webs[0].url
    alice = join(one, "origin", "alice")
    link = call(one, "POST", "/v1/dashboard/link", alice["project_key"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    with opener.open(one + link["path"], timeout=10) as shown:  # the link's page: a CSRF-guarded button
        form_cookie = shown.headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', shown.read().decode()).group(1)
    press = urllib.request.Request(one + link["path"], method="POST", headers={"Cookie": form_cookie},
                                   data=urllib.parse.urlencode({"csrf_token": token}).encode())
    try:
        opener.open(press, timeout=10)
    except urllib.error.HTTPError as answer:
        cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
        answer.close()
    with pytest.raises(simple_websocket.ConnectionError) as info:
        connect(one, Cookie=cookie, Origin="https://evil.example")
    assert info.value.status_code == 403
    ws = connect(one, Cookie=cookie, Origin=one)
    ws.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_an_open_socket_is_closed_once_its_workspace_is_revoked(webs):
    one, two = (w.url for w in webs)
    alice = join(one, "revoked-feed", "alice")
    mallory = join(one, "revoked-feed", "mallory", alice["project_key"])
    ws = connect(one, mallory["token"])
    call(two, "POST", "/v1/workspaces/mallory/revoke", alice["project_key"])  # through the other process
    end = time.monotonic() + 30  # re-checked every few seconds between reads; generous under CI load
    try:
        while time.monotonic() < end:
            call(two, "POST", "/v1/beads", alice["token"], {"title": "still streaming?"})
            ws.receive(timeout=1)
    except simple_websocket.ConnectionClosed as closed:
        assert closed.reason == 1008 and "revoked" in (closed.message or "")
    else:
        ws.close()
        pytest.fail("a revoked workspace's socket kept streaming")
