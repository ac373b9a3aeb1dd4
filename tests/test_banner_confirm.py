"""A banner line counts as shown only once the client has it (issue 15, section 5): a client that
sends `X-Wire-Seen` (the CLI does) gets every mailbox entry after the one it confirms, call after
call, until a later call confirms it; an answer lost on the way (Redis stopping after the heartbeat
ran, a dropped connection) therefore loses nothing. Runs on fakeredis and a real Redis.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli, local
from cli.client import Client, ServerUnreachable
from tests.conftest import until_waiting
from tests.test_security_keys import FlaskTransport

pytestmark = pytest.mark.atomic  # also on a real Redis server: a watch's waiter slot and stream read

SEEN = "X-Wire-Seen"


def beat(agent, seen: str | None = None, path: str = "/v1/whoami"):
    headers = {**agent._h(), **({SEEN: seen} if seen is not None else {})}
    r = agent.client.get(path, headers=headers)
    assert r.status_code == 200, r.json
    raw = r.headers.get("X-Wire-Banner")
    return json.loads(raw) if raw else {"new": [], "unread": 0}


@pytest.fixture
def pair(make_agent, worker):
    ana, bob = make_agent(alias="ana"), make_agent(alias="bob")
    assert ana.post("/mail", {"to": "bob", "subject": "deploy", "body": "at noon"}).status_code == 201
    worker.run()
    return ana, bob


def test_an_entry_whose_answer_was_lost_is_shown_again_until_a_later_call_confirms_it(pair, worker):
    ana, bob = pair
    lost = beat(bob, "0-0")["new"]  # this answer never reaches bob
    assert [(i["from"], i["subject"]) for i in lost] == [("ana", "deploy")]
    again = beat(bob, "0-0")["new"]
    assert again == lost  # shown again: nothing confirmed it
    entry = again[0]["entry"]
    confirmed = beat(bob, entry)
    assert confirmed["new"] == [] and confirmed["unread"] == 1  # still unread, no longer new
    ana.post("/mail", {"to": "bob", "subject": "second", "body": "x"})
    worker.run()
    assert [i["subject"] for i in beat(bob, entry)["new"]] == ["second"]
    # malformed: all unconfirmed
    assert [i["subject"] for i in beat(bob, "junk")["new"]] == ["deploy", "second"]


def test_a_client_that_does_not_confirm_still_sees_each_entry_once(pair):
    _, bob = pair
    assert [i["subject"] for i in beat(bob)["new"]] == ["deploy"]
    assert beat(bob)["new"] == []


def test_watch_consumes_nothing_for_a_confirming_client(real_app, make_real_agent, real_worker, real_redis):
    ana, bob = make_real_agent(alias="ana"), make_real_agent(alias="bob")
    ana.post("/mail", {"to": "bob", "body": "first"})
    real_worker.run()
    seen = beat(bob, "0-0")["new"][0]["entry"]
    got = {}

    def watcher() -> None:  # blocks: nothing after `seen` yet
        got["body"] = bob.client.application.test_client().get(
            "/v1/watch?timeout=20", headers={**bob._h(), SEEN: seen}).json

    thread = threading.Thread(target=watcher)
    thread.start()
    until_waiting(real_redis)  # the watch holds its waiter slot (store/waiters.py): it is blocked
    ana.post("/mail", {"to": "bob", "body": "while blocked"})
    real_worker.run()
    thread.join(30)
    assert [i["text"] for i in got["body"]["items"]] == ["while blocked"]
    # that answer may never have arrived: the entry is still there for the next call
    assert [i["text"] for i in beat(bob, seen)["new"]] == ["while blocked"]


class Dropping(FlaskTransport):
    """The server runs every call; the answer of the `drop`-th one is lost on the way back."""

    def __init__(self, client, drop: int) -> None:
        super().__init__(client)
        self.calls, self.drop = 0, drop

    def __call__(self, method, url, body, headers, timeout):
        answer = super().__call__(method, url, body, headers, timeout)
        self.calls += 1
        if self.calls == self.drop:
            failure = ServerUnreachable("the connection dropped")
            failure.retryable = False
            raise failure
        return answer


def test_the_cli_shows_a_line_whose_answer_was_lost_on_its_next_command_and_then_never(pair, client,
                                                                                        tmp_path: Path):
    _, bob = pair
    local.write_workspace(tmp_path, {"url": "http://wire.test", "token": bob.token, "project": "shop"})

    def wire(transport) -> str:
        obj = Client(transport=transport, start=tmp_path, auto_reserve=False)
        return CliRunner().invoke(cli, ["whoami"], obj=obj).stderr

    assert "mail from ana" not in wire(Dropping(client, drop=1))  # the heartbeat ran; its answer was lost
    assert "mail from ana: deploy" in wire(FlaskTransport(client))
    assert local.read_seen(tmp_path)
    assert "mail from ana" not in wire(FlaskTransport(client))  # confirmed by the command before
