"""The escalation webhook is not an SSRF (issue 15, section 4): internal addresses are refused in every
spelling, when the URL is set and again on the address each post connects to; redirects are never
followed; only http and https; `BEADWIRE_WEBHOOK_ALLOW_PRIVATE` admits a receiver on the LAN (here:
loopback); `POST /v1/project/webhook/test` and `wire escalations webhook --test` try once and say how it went.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cli import cli
from cli.client import Client
from store import egress, webhooks
from store.models import Project, Webhook, WebhookDelivery
from store.util import now
from tests.test_security_keys import FlaskTransport


@pytest.fixture
def shop(make_agent):
    alice = make_agent(project="shop", alias="alice")
    return SimpleNamespace(alice=alice, key=make_agent.keys["shop"], id=alice.info["project"]["id"])


@pytest.fixture
def lan(app):
    """This deployment allows private targets (BEADWIRE_WEBHOOK_ALLOW_PRIVATE=1), loopback included."""
    st = app.extensions["beadwire"]
    st.settings = st.settings.with_(webhook_allow_private=True)
    return st.settings


@pytest.fixture
def receiver():
    """An HTTP receiver on 127.0.0.1 answering the queued (status, headers), then 200."""
    posts: list[dict] = []
    answers: list[tuple[int, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"json": json.loads(body), "host": self.headers["Host"], "path": self.path})
            status, headers = answers.pop(0) if answers else (200, {})
            self.send_response(status)
            for name, value in {**headers, "Content-Length": "0"}.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(port=server.server_port, url=f"http://127.0.0.1:{server.server_port}/hook",
                          posts=posts, answers=answers)
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def listener():
    """A bare TCP socket on 127.0.0.1 (an FTP server, say) that counts the connections it gets."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0)
    accepted: list[socket.socket] = []

    def connections() -> int:
        while True:
            try:
                accepted.append(sock.accept()[0])
            except (BlockingIOError, OSError):
                return len(accepted)

    yield SimpleNamespace(port=sock.getsockname()[1], connections=connections)
    for conn in accepted:
        conn.close()
    sock.close()


def put(client, key: str, url: str | None):
    return client.put("/v1/project/webhook", json={"url": url}, headers={"Authorization": f"Bearer {key}"})


def spellings(port: int) -> list[str]:
    """The loopback addresses the black-box test got through, and their relatives."""
    return [f"http://127.0.0.1:{port}/x", f"http://localhost:{port}/x", f"http://[::1]:{port}/x",
            f"http://0x7f000001:{port}/x", f"http://2130706433:{port}/x", f"http://127.1:{port}/x",
            f"http://[::ffff:127.0.0.1]:{port}/x", f"http://0.0.0.0:{port}/x", "http://10.1.2.3/x",
            "http://192.168.1.20/x", "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x",
            "http://224.0.0.1/x", "http://100.64.0.7/x", "http://[2002:7f00:1::]/x", "http://[64:ff9b::7f00:1]/x"]


def test_internal_addresses_are_refused_in_every_spelling_when_the_url_is_set(shop, client, receiver):
    for url in [*spellings(receiver.port), "ftp://hooks.example/x", "file:///etc/passwd",
                "gopher://127.0.0.1:6379/_PING", "http://user:pw@hooks.example/x", "http://hooks\x01.example/x",
                "http://127.0.0.1\t.evil.example/x"]:
        r = put(client, shop.key, url)
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid", (url, r.json)
    assert Webhook.select().count() == 0
    r = put(client, shop.key, f"http://127.0.0.1:{receiver.port}/x")
    assert "127.0.0.1 (loopback)" in r.json["error"]["message"]
    assert "BEADWIRE_WEBHOOK_ALLOW_PRIVATE" in r.json["error"]["message"]
    assert put(client, shop.key, "https://hooks.example/x").status_code == 200  # not resolvable now: kept


def test_a_post_is_refused_on_the_address_it_would_connect_to_not_the_one_seen_when_it_was_set(
        shop, client, worker, receiver):
    # the URL was public when it was set; by the time of the post its host is loopback (DNS
    # rebinding, or a URL stored before this check existed)
    Webhook.create(project=shop.id, url=receiver.url, updated_ts=now())
    assert shop.alice.post("/escalations", {"subject": "q", "situation": "s"}).status_code == 201
    worker.run()
    post = WebhookDelivery.get()
    assert receiver.posts == [] and post.status == "pending" and post.attempts == 1
    assert post.last_error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1 (loopback)")


def test_a_redirect_is_never_followed_not_even_to_ftp(shop, client, receiver, listener, lan):
    assert put(client, shop.key, receiver.url).status_code == 200
    receiver.answers.append((302, {"Location": f"ftp://127.0.0.1:{listener.port}/pub"}))
    project = Project.get_by_id(shop.id)
    answer = webhooks.try_test(project, lan.webhook_allow_private)
    assert answer.delivered is False and answer.error.startswith("HTTP 302: redirects are not followed")
    receiver.answers.append((307, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}))
    assert webhooks.try_test(project, lan.webhook_allow_private).error.startswith("HTTP 307")
    assert [p["path"] for p in receiver.posts] == ["/hook", "/hook"] and listener.connections() == 0


def test_the_post_connects_to_the_address_it_vetted_with_the_host_name_kept(monkeypatch, receiver):
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a rebinding DNS: loopback first, then elsewhere
    monkeypatch.setattr(egress, "resolve",
                        lambda host, port: [ipaddress.ip_address(a) for a in next(answers)])
    url = f"http://hooks.test:{receiver.port}/hook"
    assert egress.post_json(url, b'{"text": "hi"}', 5, allow_private=True).status == 200
    assert receiver.posts == [
        {"json": {"text": "hi"}, "host": f"hooks.test:{receiver.port}", "path": "/hook"}]
    with pytest.raises(egress.EgressRefused, match=r"hooks.test resolves to 10.9.9.9 \(private\)"):
        egress.post_json(url, b"{}", 5, allow_private=False)  # one lookup per post, judged before connecting
    assert len(receiver.posts) == 1


def test_https_is_verified_against_the_host_name_while_connecting_to_the_vetted_address(
    tmp_path, monkeypatch
):
    import http.server
    import ssl
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # trust our own certificate only
        monkeypatch.setattr(egress, "resolve", lambda host, p: [ipaddress.ip_address("127.0.0.1")])
        assert egress.post_json(f"https://hooks.test:{port}/hook", b"{}", 5, allow_private=True).status == 204
        assert hosts == [f"hooks.test:{port}"]
        with pytest.raises(ssl.SSLCertVerificationError):  # the certificate names hooks.test, not the address
            egress.post_json(f"https://127.0.0.1:{port}/hook", b"{}", 5, allow_private=True)
    finally:
        server.shutdown()
        server.server_close()


def test_only_public_addresses_pass_by_default_and_lan_ones_with_the_setting():
    def judge(address: str, allow_private: bool = False) -> str | None:
        return egress.refusal(ipaddress.ip_address(address), allow_private)

    for public in ("93.184.216.34", "8.8.8.8", "2606:4700::1111"):
        assert judge(public) is None, public
    assert [judge(a) for a in ("127.0.0.1", "::1", "10.0.0.1", "fd00::1", "100.64.0.1")] == \
           ["loopback", "loopback", "private", "private", "private"]
    assert [judge(a, True) for a in ("127.0.0.1", "10.0.0.1", "192.168.0.9", "fd00::1")] == [None] * 4
    for never in ("169.254.169.254", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "0.1.2.3", "240.0.0.1",
                  "255.255.255.255", "::ffff:169.254.169.254"):
        assert judge(never, True) is not None, never  # cloud metadata, multicast, reserved: not even on a LAN


def test_the_test_post_tries_once_now_and_reports_the_real_outcome(shop, client, receiver, lan):
    headers = {"Authorization": f"Bearer {shop.key}"}
    assert client.post("/v1/project/webhook/test", json={}, headers=headers).status_code == 409  # none set
    assert put(client, shop.key, receiver.url).status_code == 200
    r = client.post("/v1/project/webhook/test", json={}, headers=headers)
    assert r.status_code == 200 and r.json == {"url": receiver.url, "delivered": True, "error": None}
    assert receiver.posts[0]["json"]["text"].startswith("[shop] beadwire test")
    receiver.answers.append((500, {}))
    r = client.post("/v1/project/webhook/test", json={}, headers=headers)
    assert r.json["delivered"] is False and r.json["error"] == "HTTP 500"
    assert WebhookDelivery.select().count() == 0  # nothing queued for later: the answer is the outcome


def test_wire_escalations_webhook_test_exits_1_with_the_error_when_nothing_answers(
        shop, client, tmp_path, monkeypatch, lan, receiver):
    from tests.servers import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    wire = Client("http://wire.test", transport=FlaskTransport(client), start=tmp_path, auto_reserve=False)
    nobody = f"http://127.0.0.1:{free_port()}/hook"
    out = CliRunner().invoke(cli, ["escalations", "webhook", nobody, "--test", "--key", shop.key], obj=wire)
    assert out.exit_code == 1 and "not delivered: Connection refused" in out.output, out.output
    out = CliRunner().invoke(cli, ["escalations", "webhook", "--test", "--key", shop.key, "--json"], obj=wire)
    assert out.exit_code == 1 and json.loads(out.stdout)["test"]["delivered"] is False
    out = CliRunner().invoke(cli, ["escalations", "webhook", receiver.url, "--test", "--key", shop.key],
                             obj=wire)
    assert out.exit_code == 0 and "test message delivered" in out.output and len(receiver.posts) == 1
