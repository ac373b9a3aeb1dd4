"""The CLI checks that its server URL is a beadwire server before it sends a token or key there
(issue 15, section 5): one `GET /v1/health` without credentials per new URL, remembered in the config
dir; the URL a worktree registered with is trusted without a request, so an agent's commands pay nothing.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cli import cli, local
from cli.client import Client
from tests.test_security_keys import FlaskTransport

TOKEN = "bw_ws_" + "t" * 43


@pytest.fixture
def other_server():
    """Some other web server on 127.0.0.1: answers 404 to everything and records what it was sent."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"Not Found")

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", seen=seen)
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("WIRE_PROJECT_KEY", raising=False)
    return tmp_path / "cfg"


def test_a_wire_url_pointing_at_another_server_gets_no_token_and_a_clear_error(
        tmp_path, config, other_server):
    local.write_workspace(tmp_path, {"url": "http://127.0.0.1:8765", "token": TOKEN, "project": "shop"})
    wire = Client(other_server.url, start=tmp_path, auto_reserve=False)  # WIRE_URL=<the other server>
    out = CliRunner().invoke(cli, ["whoami"], obj=wire)
    assert out.exit_code == 1, out.output
    assert f"{other_server.url} is not a beadwire server" in out.output and "nothing was sent" in out.output
    assert "WIRE_URL (or --url) points at something else" in out.output
    assert [(s["method"], s["path"]) for s in other_server.seen] == [("GET", "/v1/health")]
    assert all("Authorization" not in s["headers"] and TOKEN not in json.dumps(s) for s in other_server.seen)
    args = ["key", "rotate", "--project", "shop", "--key", "bw_pk_" + "k" * 43, "--json"]
    out = CliRunner().invoke(cli, args, obj=Client(other_server.url, start=tmp_path, auto_reserve=False))
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_beadwire"
    assert all("Authorization" not in s["headers"] for s in other_server.seen)
    assert not local.known_server(other_server.url)


def test_a_beadwire_url_is_checked_once_per_user_and_the_registered_one_never(client, make_agent, tmp_path,
                                                                              config):
    ana = make_agent(alias="ana")
    calls: list[str] = []

    class Counting(FlaskTransport):
        def __call__(self, method, url, body, headers, timeout):
            calls.append(url.split("://", 1)[1].split("/", 1)[1])
            return super().__call__(method, url, body, headers, timeout)

    transport = Counting(client)
    for _ in range(2):  # two commands with WIRE_URL set, outside any worktree
        wire = Client("http://wire.test", token=ana.token, transport=transport, start=tmp_path)
        assert wire.whoami()["alias"] == "ana"
    assert calls == ["v1/health", "v1/whoami", "v1/whoami"]
    assert local.known_server("http://wire.test") and (config / "servers.json").stat().st_mode & 0o077 == 0
    tree = tmp_path / "tree"
    tree.mkdir()
    local.write_workspace(tree, {"url": "http://registered.test", "token": ana.token, "project": "shop"})
    calls.clear()
    assert Client(transport=transport, start=tree, auto_reserve=False).whoami()["alias"] == "ana"
    assert calls == ["v1/whoami"]  # the worktree's own server: no check, no file read


def test_every_answer_says_it_comes_from_beadwire(client, make_agent):
    ana = make_agent(alias="ana")
    answers = [client.get("/v1/health"), client.get("/v1/nothing-here"), client.get("/v1/whoami"),
               ana.get("/whoami"), client.get("/login")]
    assert [r.headers.get("X-Beadwire") for r in answers] == ["1"] * len(answers)
