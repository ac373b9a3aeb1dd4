"""The OpenAPI document describes the whole API, and the API keeps to it: schemathesis generates
requests for every operation (in-process, against the WSGI app on a real Redis) and checks that no
answer is a 500 and every answer has a documented status and matches its documented schema. It runs
twice: with a workspace token (the project key only where nothing else is accepted), and with the
human credential, the project key, on every operation.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from web.openapi import build, is_api, undocumented

#: Generated examples per operation: enough to find the odd input, few enough for CI (~1-2 min);
#: BEADWIRE_OPENAPI_EXAMPLES=200 digs deeper locally.
EXAMPLES = int(os.environ.get("BEADWIRE_OPENAPI_EXAMPLES", "20"))
#: An alias no generator guesses: revoking the tester would end the run.
TESTER = "openapi-tester-5f1c"
#: Long polls answer at once in this run (their timeout is not what is under test).
LONG_POLLS = ("/v1/watch", "/v1/chat/wait")


class Tenant:
    """The caller: a workspace of a project with a bead, a claim and the project key."""

    def __init__(self, client) -> None:
        body = {"project": "api", "repo_origin": "git@github.com:acme/api.git", "alias": TESTER}
        r = client.post("/v1/init", json=body)
        assert r.status_code == 201, r.json
        self.token, self.key = r.json["token"], r.json["project_key"]
        headers = {"Authorization": f"Bearer {self.token}"}
        bead = client.post("/v1/beads", json={"title": "seed"}, headers=headers).json["id"]
        client.post(f"/v1/beads/{bead}/claim", json={}, headers=headers)

    def headers(self, case: Any, human: bool = False) -> dict[str, str]:
        """The caller's bearer: the workspace token where the operation takes one, else the project
        key; with `human`, the project key wherever a bearer is wanted."""
        security = case.operation.definition.raw.get("security") or []
        if not security:
            return {}
        bearer = self.key if human or "projectKey" in security[0] else self.token
        return {"Authorization": f"Bearer {bearer}"}

    def saw(self, case: Any, response: Any) -> None:
        """Follow a key rotation the generator made, so later calls keep their key."""
        if case.path == "/v1/project/key/rotate" and case.method == "POST" and response.status_code == 200:
            self.key = response.json()["project_key"]


@pytest.fixture
def tenant(real_app) -> Tenant:
    return Tenant(real_app.test_client())


@pytest.fixture
def api(real_app, tenant):
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", real_app)


schema = schemathesis.pytest.from_fixture("api")


def call(case: Any, tenant: Tenant, human: bool) -> None:
    if case.path in LONG_POLLS and isinstance(case.query, dict):
        case.query["timeout"] = 0
    response = case.call_and_validate(headers=tenant.headers(case, human), checks=[
        not_a_server_error, response_schema_conformance, status_code_conformance])
    tenant.saw(case, response)


FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


# slow: fuzzing every operation is ~40% of the fast loop's time; the full suite (and CI) runs it
@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_no_server_error_and_every_answer_keeps_to_the_document(case, tenant):
    call(case, tenant, human=False)


# slow: fuzzing every operation is ~40% of the fast loop's time; the full suite (and CI) runs it
@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_with_the_project_key_on_every_operation_no_server_error_either(case, tenant):
    call(case, tenant, human=True)


def test_every_api_route_is_documented(real_app):
    assert undocumented(real_app) == []
    spec = build(real_app)
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routes = {(rule.rule, method) for rule in real_app.url_map.iter_rules() if is_api(rule.endpoint)
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert len(documented) == len(routes)


def test_the_document_is_served_without_a_token_and_describes_errors_and_auth(client):
    r = client.get("/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json
    assert spec["openapi"].startswith("3.")
    assert set(spec["components"]["securitySchemes"]) == {"workspace", "projectKey", "personToken"}
    claim = spec["paths"]["/v1/beads/{ref}/claim"]["post"]
    assert claim["security"] == [{"workspace": []}]
    conflict = claim["responses"]["409"]["content"]["application/json"]
    assert conflict["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "429" in claim["responses"]
    respond = spec["paths"]["/v1/escalations/{escalation_id}/respond"]["post"]
    assert respond["security"] == [{"projectKey": []}, {"personToken": []}] and "403" in respond["responses"]
    body = respond["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["response"] and body["properties"]["response"]["maxLength"] > 0
    assert body["additionalProperties"] is False
