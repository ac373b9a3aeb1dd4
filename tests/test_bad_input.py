"""Bad input is answered with a 4xx JSON error, never a 500, and never leaves a partial write."""

from __future__ import annotations

import pytest

from store.beads import MAX_TEXT, MAX_TITLE


def headers(agent):
    return {"Authorization": f"Bearer {agent.token}"}


def assert_error(response, status, code=None):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json
    assert response.json["error"]["message"]
    if code:
        assert response.json["error"]["code"] == code


@pytest.fixture
def ana(make_agent):
    return make_agent(alias="ana")


@pytest.fixture
def bead(ana):
    return ana.create("Existing")


def body_routes(bead):
    """Every route that reads a JSON body: (method, path)."""
    return [("POST", "/v1/beads"), ("PATCH", f"/v1/beads/{bead}"), ("POST", f"/v1/beads/{bead}/comments"),
            ("POST", f"/v1/beads/{bead}/deps"), ("POST", f"/v1/beads/{bead}/claim"),
            ("POST", f"/v1/beads/{bead}/close"), ("POST", "/v1/sync"), ("POST", "/v1/init")]


def everything(ana):
    """What ana's project holds, to check that a refused request wrote nothing."""
    return [(b["id"], b["title"], b["status"], b["labels"], b["dependencies"], b["claim"], b["updated_at"])
            for b in ana.get("/beads?all=1").json]


# -- not a JSON object ------------------------------------------------------------------------------

@pytest.mark.parametrize("data, content_type", [
    ("title=hello", "application/x-www-form-urlencoded"),
    ("hello", "text/plain"),
    ('{"title": "unterminated', "application/json"),
    ("{'title': 'single quotes'}", "application/json"),
])
def test_a_body_that_is_not_json_is_a_bad_request(client, ana, bead, data, content_type):
    before = everything(ana)
    for method, path in body_routes(bead):
        r = client.open(path, method=method, data=data, content_type=content_type, headers=headers(ana))
        assert_error(r, 400, "bad_request")
    assert everything(ana) == before


@pytest.mark.parametrize("body", ['["title", "x"]', "[]", '"a string"', "5", "null", "true"])
def test_a_json_body_that_is_not_an_object_is_a_bad_request(client, ana, bead, body):
    before = everything(ana)
    for method, path in body_routes(bead):
        r = client.open(path, method=method, data=body, content_type="application/json", headers=headers(ana))
        assert_error(r, 400, "bad_request")
    assert everything(ana) == before


# -- wrong types and unknown fields ------------------------------------------------------------------

WRONG_TYPES = [
    ("POST", "/beads", {"title": 5}, "title"),
    ("POST", "/beads", {"title": None}, "title"),
    ("POST", "/beads", {"title": ["x"]}, "title"),
    ("POST", "/beads", {"title": "x", "labels": "x"}, "labels"),
    ("POST", "/beads", {"title": "x", "labels": [5]}, "labels"),
    ("POST", "/beads", {"title": "x", "priority": True}, "priority"),
    ("POST", "/beads", {"title": "x", "description": 5}, "description"),
    ("POST", "/beads", {"title": "x", "issue_type": {"a": 1}}, "issue_type"),
    ("POST", "/beads", {"title": "x", "blocked_by": "bd-1"}, "blocked_by"),
    ("POST", "/beads", {"title": "x", "parent": 5}, "parent"),
    ("POST", "/beads", {}, "title"),
    ("PATCH", "/beads/{bead}", {"status": "done"}, "status"),
    ("PATCH", "/beads/{bead}", {"status": 1}, "status"),
    ("PATCH", "/beads/{bead}", {"priority": True}, "priority"),
    ("PATCH", "/beads/{bead}", {"add_labels": "x"}, "add_labels"),
    ("PATCH", "/beads/{bead}", {"assignee": 3}, "assignee"),
    ("PATCH", "/beads/{bead}", {"status": "in_progress", "jump_in": 7}, "jump_in"),
    ("POST", "/beads/{bead}/claim", {"jump_in": 7}, "jump_in"),
    ("POST", "/beads/{bead}/claim", {"jump_in": ""}, "jump_in"),
    ("POST", "/beads/{bead}/comments", {"text": 5}, "text"),
    ("POST", "/beads/{bead}/comments", {"text": ""}, "text"),
    ("POST", "/beads/{bead}/deps", {"target": 5}, "target"),
    ("POST", "/beads/{bead}/deps", {"target": "bd-1", "type": "friends"}, "type"),
    ("POST", "/beads/{bead}/close", {"reason": 5}, "reason"),
    ("POST", "/sync", {"jsonl": 5}, "jsonl"),
    ("POST", "/sync", {"jsonl": "", "mode": "sometimes"}, "mode"),
    ("POST", "/init", {"project": "shop", "repo_origin": 5}, "repo_origin"),
    ("POST", "/init", {"project": "shop", "repo_origin": "x/y", "role": "has spaces"}, "role"),
]


@pytest.mark.parametrize("method, path, body, field", WRONG_TYPES,
                         ids=[f"{m} {p} {f}" for m, p, _, f in WRONG_TYPES])
def test_a_field_of_the_wrong_type_is_invalid_and_named(ana, bead, method, path, body, field):
    before = everything(ana)
    path = path.replace("{bead}", bead)
    r = ana.patch(path, body) if method == "PATCH" else ana.post(path, body)
    assert_error(r, 422, "invalid")
    assert field in r.json["error"]["message"]
    assert everything(ana) == before


UNKNOWN_FIELDS = [
    ("POST", "/beads", {"title": "x", "owner": "me"}, "owner"),
    ("PATCH", "/beads/{bead}", {"title": "x", "colour": "red"}, "colour"),
    ("POST", "/beads/{bead}/claim", {"force": True}, "force"),
    ("POST", "/beads/{bead}/comments", {"text": "hi", "author": "someone-else"}, "author"),
    ("POST", "/beads/{bead}/deps", {"target": "bd-1", "why": "because"}, "why"),
    ("POST", "/beads/{bead}/close", {"reason": "done", "unblock": True}, "unblock"),
    ("POST", "/sync", {"jsonl": "", "repo": "elsewhere"}, "repo"),
    ("POST", "/init", {"project": "shop", "repo_origin": "x/y", "admin": True}, "admin"),
]


@pytest.mark.parametrize("method, path, body, field", UNKNOWN_FIELDS,
                         ids=[f"{m} {p} {f}" for m, p, _, f in UNKNOWN_FIELDS])
def test_an_unknown_field_is_invalid_and_named(ana, bead, method, path, body, field):
    before = everything(ana)
    path = path.replace("{bead}", bead)
    r = ana.patch(path, body) if method == "PATCH" else ana.post(path, body)
    assert_error(r, 422, "invalid")
    assert field in r.json["error"]["message"]
    assert field in r.json["error"]["fields"]
    assert everything(ana) == before


# -- sizes ---------------------------------------------------------------------------------------------

OVERSIZE = [
    ("POST", "/beads", {"title": "x" * (MAX_TITLE + 1)}, "title"),
    ("POST", "/beads", {"title": "x", "description": "x" * (MAX_TEXT + 1)}, "description"),
    ("POST", "/beads", {"title": "x", "labels": ["x" * 201]}, "labels"),
    ("POST", "/beads", {"title": "x", "labels": [f"l{n}" for n in range(101)]}, "labels"),
    ("PATCH", "/beads/{bead}", {"title": "x" * (MAX_TITLE + 1)}, "title"),
    ("PATCH", "/beads/{bead}", {"description": "x" * (MAX_TEXT + 1)}, "description"),
    ("POST", "/beads/{bead}/comments", {"text": "x" * (MAX_TEXT + 1)}, "text"),
    ("POST", "/beads/{bead}/claim", {"jump_in": "x" * 2001}, "jump_in"),
    ("POST", "/init", {"project": "shop", "repo_origin": "x/y", "alias": "a" * 65}, "alias"),
    ("POST", "/init", {"project": "p" * 65, "repo_origin": "x/y"}, "project"),
]


@pytest.mark.parametrize("method, path, body, field", OVERSIZE,
                         ids=[f"{m} {p} {f}" for m, p, _, f in OVERSIZE])
def test_an_oversize_field_is_invalid_and_named(ana, bead, method, path, body, field):
    before = everything(ana)
    path = path.replace("{bead}", bead)
    r = ana.patch(path, body) if method == "PATCH" else ana.post(path, body)
    assert_error(r, 422, "invalid")
    assert field in r.json["error"]["message"]
    assert everything(ana) == before


def test_the_largest_allowed_title_and_description_are_accepted(ana):
    bead = ana.create("x" * MAX_TITLE, description="y" * MAX_TEXT)
    shown = ana.get(f"/beads/{bead}").json
    assert (len(shown["title"]), len(shown["description"])) == (MAX_TITLE, MAX_TEXT)


@pytest.fixture
def small_client(settings, redis):
    """An app whose request bodies are capped at 4 KiB."""
    from store.schema import migrate
    from web import create_app

    app = create_app(settings.with_(max_body=4096), redis)
    migrate()
    return app.test_client()


def test_a_body_over_the_size_limit_is_too_large(small_client):
    from tests.conftest import Agent

    r = small_client.post("/v1/init", json={"project": "shop", "repo_origin": "x/y", "human": "h" * 5000})
    assert_error(r, 413, "too_large")
    r = small_client.post("/v1/init", json={"project": "shop", "repo_origin": "x/y"})
    assert r.status_code == 201
    ana = Agent(small_client, r.json["token"], r.json)
    bead = ana.create("fits")
    for method, path in body_routes(bead):
        big = {"title": "x", "text": "y", "jsonl": "z" * 5000, "description": "d" * 5000}
        r = small_client.open(path, method=method, json=big, headers=headers(ana))
        assert_error(r, 413, "too_large")
    assert [b["id"] for b in ana.get("/beads?all=1").json] == [bead]
    assert ana.get(f"/beads/{bead}").json["comments"] == []


def test_each_app_keeps_its_own_body_limit(small_client, client):
    """The limit is set on each app's request class: a second app's does not become the first's."""
    body = {"project": "roomy", "repo_origin": "x/y", "human": "h" * 5000}  # over 4 KiB, under the default
    assert_error(client.post("/v1/init", json=body), 422, "invalid")  # read, then refused: a name that long
    assert_error(small_client.post("/v1/init", json=body), 413, "too_large")  # not even read
    assert_error(client.post("/v1/init", json=body), 422, "invalid")


# -- unknown things -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/beads/bd-nope"), ("PATCH", "/v1/beads/bd-nope"), ("POST", "/v1/beads/bd-nope/comments"),
    ("POST", "/v1/beads/bd-nope/deps"), ("GET", "/v1/beads/bd-nope/deps"),
    ("POST", "/v1/beads/bd-nope/claim"), ("DELETE", "/v1/beads/bd-nope/claim"),
    ("POST", "/v1/beads/bd-nope/close"),
    ("POST", "/v1/beads/bd-nope/reopen"), ("GET", "/v1/ready/bd-nope"), ("GET", "/v1/beads/nowhere:bd-nope"),
])
def test_an_unknown_bead_is_a_json_404(client, ana, method, path):
    body = {"PATCH": {"title": "x"}, "POST": {}}.get(method)
    if path.endswith("/comments"):
        body = {"text": "x"}
    if path.endswith("/deps") and method == "POST":
        body = {"target": ana.create("exists")}
    r = client.open(path, method=method, json=body, headers=headers(ana))
    assert_error(r, 404, "not_found")


def test_an_unknown_route_or_method_is_a_json_error(client, ana):
    assert_error(client.get("/v1/nothing-here", headers=headers(ana)), 404)
    assert_error(client.put("/v1/beads", json={}, headers=headers(ana)), 405)


@pytest.mark.parametrize("body", [
    {"title": "x", "blocked_by": ["{bead}", "bd-ghost"]},
    {"title": "x", "parent": "bd-ghost"},
    {"title": "x", "parent": "{bead}", "blocked_by": ["bd-ghost"]},
])
def test_a_create_with_an_unknown_reference_creates_nothing(ana, bead, body):
    before = everything(ana)
    filled = {k: (v.replace("{bead}", bead) if isinstance(v, str) else [x.replace("{bead}", bead) for x in v])
              if k != "title" else v for k, v in body.items()}
    r = ana.post("/beads", filled)
    assert_error(r, 404, "not_found")
    assert "bd-ghost" in r.json["error"]["message"]
    assert everything(ana) == before


def test_a_sync_with_one_bad_line_writes_nothing(ana):
    before = everything(ana)
    good = '{"id": "bd-good", "title": "fine"}'
    bad = '{"id": "bd-bad", "title": 5}'
    r = ana.sync(f"{good}\n{bad}", mode="incremental")
    assert_error(r, 422, "sync_rejected")
    assert r.json["error"]["line"] == 2
    assert everything(ana) == before


# -- never a 500 ----------------------------------------------------------------------------------------

WEIRD_BODIES = [
    {}, {"title": ""}, {"title": " "}, {"title": {"nested": {"deep": [1, 2]}}}, {"labels": [None]},
    {"title": "x", "priority": 10**30}, {"title": "x", "priority": "P"}, {"title": "x", "priority": -0.0},
    {"title": "x", "blocked_by": [5]}, {"title": "x", "blocked_by": [""]}, {"title": "x", "parent": ""},
    {"title": "x", "parent": None}, {"status": None}, {"jump_in": None}, {"text": None},
    {"target": ""}, {"target": "x" * 600}, {"jsonl": None}, {"jsonl": "{}"}, {"jsonl": "[]\n5\nnull"},
    {"project": "UPPER", "repo_origin": "x/y"}, {"project": "shop", "repo_origin": ""},
    {"project": "shop", "repo_origin": "https://github.com/"}, {"project": "shop", "repo_origin": "x/y",
                                                                 "alias": "bad alias!"},
    {"title": "\ud800"}, {"title": "x", "labels": ["a", "a"]},
]


@pytest.mark.parametrize("body", WEIRD_BODIES, ids=[str(n) for n in range(len(WEIRD_BODIES))])
def test_odd_bodies_never_cause_a_server_error(client, ana, bead, body):
    for method, path in body_routes(bead):
        r = client.open(path, method=method, json=body, headers=headers(ana))
        assert r.status_code < 500, (method, path, r.status_code, r.get_data(as_text=True)[:300])
        assert r.is_json


@pytest.mark.parametrize("query", [
    "/beads?limit=abc", "/beads?limit=-1", "/beads?limit=0", "/beads?limit=99999999999999999999999",
    "/beads?status=nope", "/beads?all=maybe", "/beads?colour=red", "/search", "/search?q=", "/search?q=%20",
    "/ready?limit=0", "/ready?limit=x", "/beads/%20", "/ready/%20", "/beads?repo=" + "r" * 400,
])
def test_bad_query_strings_are_refused_without_a_server_error(ana, query):
    r = ana.get(query)
    assert 400 <= r.status_code < 500, (query, r.status_code)
    assert r.is_json and r.json["error"]["message"]


# -- text the databases cannot store -------------------------------------------------------------------

#: These are about SQL (PostgreSQL refuses NUL); Redis plays no part, so fakeredis is enough.
fake_redis_only = pytest.mark.parametrize("redis", [pytest.param("fake", marks=pytest.mark.fake)],
                                          indirect=True)

UNSTORABLE = [
    ("POST", "/beads", {"title": "nul\x00inside"}, "title"),
    ("POST", "/beads", {"title": "x", "description": "\x00"}, "description"),
    ("POST", "/beads", {"title": "lone \ud800 surrogate"}, "title"),
    ("POST", "/beads", {"title": "x", "labels": ["a\x00"]}, "labels"),
    ("PATCH", "/beads/{bead}", {"assignee": "\x00"}, "assignee"),
    ("POST", "/beads/{bead}/comments", {"text": "a\x00b"}, "text"),
    ("POST", "/beads/{bead}/claim", {"jump_in": "\x00"}, "jump_in"),
    ("POST", "/beads/{bead}/close", {"reason": "\udfff"}, "reason"),
    ("POST", "/init", {"project": "shop", "repo_origin": "x/y", "human": "\x00"}, "human"),
]


@fake_redis_only
def test_nul_characters_and_lone_surrogates_are_invalid_on_every_database(make_pg_agent):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Existing")
    before = everything(ana)
    for method, path, body, field in UNSTORABLE:
        path = path.replace("{bead}", bead)
        r = ana.patch(path, body) if method == "PATCH" else ana.post(path, body)
        assert_error(r, 422, "invalid")
        assert field in r.json["error"]["message"], (path, body)
    assert everything(ana) == before


@fake_redis_only
def test_nul_characters_in_references_and_queries_find_nothing_on_every_database(make_pg_agent):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Existing")
    assert_error(ana.get(f"/beads/{bead}%00"), 404, "not_found")
    assert_error(ana.post(f"/beads/{bead}%00/claim"), 404, "not_found")
    assert_error(ana.post(f"/beads/{bead}/deps", {"target": f"{bead}\x00x"}), 422, "invalid")
    r = ana.get("/search?q=Exist%00")
    assert r.status_code < 500 and r.is_json
    r = ana.get("/beads?label=a%00")
    assert r.status_code < 500 and r.is_json
    assert ana.get(f"/beads/{bead}").json["claim"] is None


@fake_redis_only
def test_a_synced_record_with_a_nul_character_is_rejected_naming_the_line(make_pg_agent):
    ana = make_pg_agent(alias="ana")
    good = '{"id": "bd-good", "title": "fine"}'
    for bad in ('{"id": "bd-bad", "title": "a\\u0000b"}',
                '{"id": "bd-bad", "title": "x", "comments": [{"author": "a", "text": "\\u0000"}]}'):
        r = ana.sync(f"{good}\n{bad}")
        assert_error(r, 422, "sync_rejected")
        assert r.json["error"]["line"] == 2
    assert ana.get("/beads?all=1").json == []


# -- nesting, ids and query strings (issue 8: size limits everywhere) --------------------------------

def nested(depth: int) -> str:
    """A JSON object whose `labels` nests `depth` arrays deep (the object itself is level 1)."""
    return '{"title": "deep", "labels": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_a_body_nested_too_deep_is_a_bad_request_before_validation(client, ana, bead, depth):
    before = everything(ana)
    for method, path in body_routes(bead):
        r = client.open(path, method=method, data=nested(depth), content_type="application/json",
                        headers=headers(ana))
        assert_error(r, 400, "bad_request")
        assert "deeper than 32 levels" in r.json["error"]["message"]
    assert everything(ana) == before


def test_a_body_at_the_depth_limit_reaches_validation(client, ana):
    r = client.post("/v1/beads", data=nested(31), content_type="application/json", headers=headers(ana))
    assert_error(r, 422, "invalid")  # labels are strings: refused by the schema, not by the depth check


@pytest.mark.parametrize("depth", [40, 5000])
def test_a_synced_record_nested_too_deep_is_rejected_naming_the_line(ana, depth):
    deep = '{"id": "bd-deep", "title": "x", "extra": ' + "[" * depth + "]" * depth + "}"
    r = ana.sync('{"id": "bd-good", "title": "fine"}\n' + deep)
    assert_error(r, 422, "sync_rejected")
    assert r.json["error"]["line"] == 2 and "deeper than 32" in r.json["error"]["message"]
    assert ana.get("/beads?all=1").json == []


def test_a_synced_line_over_the_line_limit_is_rejected_naming_the_line(ana):
    long = '{"id": "bd-long", "title": "x", "description": "' + "d" * (1024 * 1024) + '"}'
    r = ana.sync('{"id": "bd-good", "title": "fine"}\n' + long)
    assert_error(r, 422, "sync_rejected")
    assert r.json["error"]["line"] == 2 and "longer than" in r.json["error"]["message"]


@pytest.mark.parametrize("path", ["/mail/99999999999999999999/ack", "/escalations/2147483648",
                                  "/mail/9223372036854775808/ack"])
def test_an_id_too_large_for_sql_is_not_found(ana, path):
    r = ana.post(path) if path.endswith("/ack") else ana.get(path)
    assert_error(r, 404, "not_found")


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/mail/open", {"id": 2**31}),
    ("POST", "/mail/open", {"id": 10**30}),
    ("GET", "/chat/wait?with=ana&after=99999999999999999999", None),
    ("GET", "/policy/bundle?version=99999999999999999999", None),
    ("POST", "/policy/activate", {"version": 2**40}),
])
def test_a_number_too_large_for_sql_is_invalid(client, ana, make_agent, method, path, body):
    key = make_agent.keys["shop"]
    bearer = key if path.startswith("/policy/activate") else ana.token
    r = client.open(f"/v1{path}", method=method, json=body, headers={"Authorization": f"Bearer {bearer}"})
    assert_error(r, 422, "invalid")


def test_a_query_string_over_the_limit_is_a_bad_request(ana):
    r = ana.get("/search?q=x&pad=" + "p" * 9000)
    assert_error(r, 400, "bad_request")
    assert "query string" in r.json["error"]["message"]
    assert ana.get("/search?q=" + "x" * 501).status_code == 422  # each field has its own limit


def test_every_body_and_query_string_field_has_a_length_limit(app):
    """No request schema takes an unbounded string or list (the body cap aside, the sync's `jsonl` and
    `base`: whole beads files, whose lines the store checks)."""
    from marshmallow import fields, validate

    from web.openapi import operations

    bounds = (validate.Length, validate.OneOf, validate.Regexp)
    unbounded = []
    for name, op in operations(app).items():
        for schema in (op.body, op.query):
            for field_name, field in (schema.fields.items() if schema else ()):
                if isinstance(field, (fields.Str, fields.List, fields.Dict)) and not any(
                        isinstance(v, bounds) for v in field.validators):
                    unbounded.append(f"{name}.{field_name}")
    assert unbounded == ["sync.sync.jsonl", "sync.sync.base"]
