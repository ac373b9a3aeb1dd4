"""`GET /metrics` (Prometheus text format) and the JSON log format."""

from __future__ import annotations

import json
import logging
import re

import pytest

from store import metrics
from store.logs import JsonFormatter, scrub


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def scrape(client, **headers: str) -> dict[str, float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.data
    assert r.mimetype == "text/plain"
    return samples(r.get_data(as_text=True))


def test_requests_are_counted_by_route_template_and_status(client, make_agent):
    ana = make_agent(alias="ana")
    bead = ana.create("count me")
    for _ in range(3):
        assert ana.get(f"/beads/{bead}").status_code == 200
    assert ana.get("/beads/bd-nope").status_code == 404
    found = scrape(client)
    route = 'method="GET",route="/v1/beads/<path:ref>"'
    assert found[f'beadwire_http_requests_total{{{route},status="200"}}'] >= 3
    assert found[f'beadwire_http_requests_total{{{route},status="404"}}'] >= 1
    assert found[f'beadwire_http_request_duration_seconds_count{{{route}}}'] >= 4
    assert found[f'beadwire_http_request_duration_seconds_bucket{{{route},le="+Inf"}}'] >= 4
    assert found['beadwire_http_requests_total{method="POST",route="/v1/init",status="201"}'] >= 1
    assert not any(bead in name for name in found)  # templates, never raw paths


def test_histogram_buckets_are_cumulative(client, make_agent):
    make_agent(alias="ana").get("/whoami")
    found = scrape(client)
    bounds = [*(str(b) for b in metrics.LATENCY_BUCKETS), "+Inf"]
    bucket = 'beadwire_http_request_duration_seconds_bucket{{method="GET",route="/v1/whoami",le="{}"}}'
    values = [found[bucket.format(b)] for b in bounds]
    assert values == sorted(values) and values[-1] >= 1


def test_gauges_show_online_workspaces_open_chats_and_the_outbox(client, make_agent):
    ana, bob = make_agent(alias="ana"), make_agent(alias="bob")
    ana.get("/whoami"), bob.get("/whoami")  # authenticated calls: both online now
    before = scrape(client)
    assert before["beadwire_online_workspaces"] == 2
    assert before["beadwire_open_chats"] == 0
    assert ana.post("/chat", {"to": "bob", "body": "which port?", "wait": 120}).status_code == 201
    found = scrape(client)
    assert found["beadwire_open_chats"] == 1
    assert found["beadwire_outbox_undelivered"] >= 1  # the fast path published it; the sweep confirms later
    assert found["beadwire_outbox_lag_seconds"] >= 0
    assert found['beadwire_queue_messages{queue="default"}'] == 0
    assert bob.post("/chat", {"to": "ana", "body": "8765"}).status_code == 201


def test_the_exposition_names_no_workspace_or_project(client, make_agent):
    ana = make_agent(project="secretproj", alias="zelda-the-agent")
    ana.get("/whoami")
    text = client.get("/metrics").get_data(as_text=True)
    assert "zelda" not in text and "secretproj" not in text and ana.token not in text
    assert all(re.match(r"^(# (HELP|TYPE) \w+ .+|\w+(\{.*\})? [-+.\deE]+|[\w]+(\{.*\})? \+?Inf)$", line)
               for line in text.splitlines()), text


def test_counts_from_other_processes_arrive_through_redis(client, app, make_agent):
    # another process flushed its counters into the shared hash: this scrape shows them too
    other = metrics.RequestCounters()
    other.observe("GET", "/v1/elsewhere", 200, 0.002)
    other.flush(app.extensions["beadwire"])
    found = scrape(client)
    assert found['beadwire_http_requests_total{method="GET",route="/v1/elsewhere",status="200"}'] == 1
    bucket = 'beadwire_http_request_duration_seconds_bucket{method="GET",route="/v1/elsewhere",le="0.005"}'
    assert found[bucket] == 1


@pytest.fixture
def guarded_client(settings, redis):
    from tests.conftest import _make_app

    return _make_app(settings.with_(metrics_token="s3cret-metrics"), redis).test_client()


def test_a_metrics_token_guards_the_endpoint(guarded_client):
    assert guarded_client.get("/metrics").status_code == 401
    assert guarded_client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = guarded_client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert scraped.status_code == 200


def test_every_answer_carries_a_request_id(client):
    first, second = client.get("/v1/health"), client.get("/v1/health")
    assert re.fullmatch(r"[0-9a-f]{16}", first.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    traced = client.get("/v1/health", headers={"X-Request-Id": "trace-42"})
    assert traced.headers["X-Request-Id"] == "trace-42"
    bad = client.get("/v1/health", headers={"X-Request-Id": "evil\u2028id" * 20}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", bad)


def test_the_access_log_is_one_json_object_per_line_without_secrets(client, make_agent, caplog):
    ana = make_agent(alias="ana")
    caplog.set_level(logging.INFO, logger="beadwire.access")
    headers = {"Authorization": f"Bearer {ana.token}", "X-Request-Id": "req-1"}
    assert client.get("/v1/whoami", headers=headers).status_code == 200
    record = next(r for r in caplog.records
                  if r.name == "beadwire.access" and getattr(r, "request_id", "") == "req-1")
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "beadwire.access"
    assert (entry["method"], entry["path"], entry["status"], entry["request_id"]) == (
        "GET", "/v1/whoami", 200, "req-1")
    assert entry["ms"] >= 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
    assert ana.token not in line


def test_a_path_carrying_a_token_is_logged_as_its_route(client, caplog):
    caplog.set_level(logging.INFO, logger="beadwire.access")
    client.get("/login/1.very-secret-link-token")
    paths = [r.path for r in caplog.records if r.name == "beadwire.access"]
    assert paths and all("very-secret" not in p for p in paths), paths


def test_credentials_are_scrubbed_from_log_messages():
    record = logging.LogRecord("beadwire.web", logging.WARNING, __file__, 1,
                               "refused %s", ("Authorization: Bearer bw_ws_abcdefghijkl",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "refused Authorization: Bearer [redacted]"
    assert scrub("key bw_pk_abcdefghijklmnop leaked") == "key [redacted] leaked"
