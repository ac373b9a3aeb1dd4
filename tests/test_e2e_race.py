"""The claim race, end to end: 20 workspaces claim one bead at once, 200 rounds, through a real
`wire serve` stack (two gunicorn worker processes, a Dramatiq worker, a real Redis), on SQLite and
on PostgreSQL. Every round must have exactly one winner; every loser gets 409 naming the winner.
"""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import quote, urlparse

import pytest

pytestmark = pytest.mark.slow

AGENTS = 20
ROUNDS = 200


class Conn:
    """One keep-alive HTTP connection per agent thread (as an agent's own process would have)."""

    def __init__(self, url: str, token: str = "") -> None:
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.token = token

    def close(self) -> None:
        self.conn.close()

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        headers = {"Content-Type": "application/json"}
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        self.conn.request(method, f"/v1{path}", body=json.dumps(body or {}), headers=headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def stack(request, tmp_path):
    from tests.servers import start_stack

    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("pg_server").create_database("race")
    server = start_stack(tmp_path, database_url=database_url, workers=2)
    yield server
    server.stop()


def _register(url: str) -> list[str]:
    conn = Conn(url)
    status, first = conn.call("POST", "/init", {"project": "race",
                                                "repo_origin": "git@github.com:acme/race.git",
                                                "alias": "agent-0", "human": "Human 0"})
    assert status == 201, first
    tokens, key = [first["token"]], first["project_key"]
    for i in range(1, AGENTS):
        status, body = conn.call("POST", "/init", {"project": "race", "repo_origin": "https://github.com/acme/race",
                                                   "alias": f"agent-{i}", "human": f"Human {i}"}, token=key)
        assert status == 201, body
        tokens.append(body["token"])
    conn.close()
    return tokens


def test_twenty_agents_racing_for_one_bead_always_leave_exactly_one_winner(stack):
    tokens = _register(stack.url)
    conns = [Conn(stack.url, t) for t in tokens]
    barrier = threading.Barrier(AGENTS)
    results: list[tuple[int, dict]] = [(0, {})] * AGENTS
    failures = []

    def racer(i: int, path: str) -> None:
        barrier.wait()
        results[i] = conns[i].call("POST", path)

    for round_no in range(ROUNDS):
        status, bead = conns[0].call("POST", "/beads", {"title": f"round {round_no}"})
        assert status == 201, bead
        path = f"/beads/{quote(bead['id'], safe='')}/claim"
        threads = [threading.Thread(target=racer, args=(i, path)) for i in range(AGENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, (s, _) in enumerate(results) if s == 200]
        losers = [body for s, body in results if s == 409]
        if len(winners) != 1 or len(losers) != AGENTS - 1:
            failures.append((round_no, [s for s, _ in results]))
            continue
        winner = f"agent-{winners[0]} (Human {winners[0]})"
        refusal = f"{bead['id']} is being worked on by {winner}"
        assert all(body["error"]["message"] == refusal for body in losers)
        status, shown = conns[0].call("GET", path.rsplit("/", 1)[0])
        assert shown["claim"]["alias"] == f"agent-{winners[0]}"
    assert failures == [], f"rounds without exactly one winner: {failures[:5]}"
    status, claims = conns[0].call("GET", "/claims")
    for conn in conns:
        conn.close()
    assert status == 200 and len(claims) == ROUNDS
    assert len({c["bead"] for c in claims}) == ROUNDS
