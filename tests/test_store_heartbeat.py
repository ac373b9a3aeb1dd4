"""The web heartbeat's per-process memos: what a beat stores, announces and sends is the same whether
it was built on this call or kept from an earlier one (store/workspaces.py `_beat_texts`,
`_beat_rates`)."""

from __future__ import annotations

import json

import pytest

from store.redis import Rate
from store.redis.base import compact
from store.workspaces import _beat_rates, _beat_texts


@pytest.fixture
def alice(make_agent):
    return make_agent(project="shop", alias="alice", human="Alice")


def _stored_presence(app, project_id: int, workspace_id: int) -> str:
    st = app.extensions["beadwire"]
    return st.redis.client.hget(st.redis.keys.presence_key(project_id), str(workspace_id))


def _online_events(app, project_id: int) -> list[str]:
    st = app.extensions["beadwire"]
    rows = st.redis.client.xrange(st.redis.keys.events_key(project_id))
    return [fields["data"] for _, fields in rows if fields["kind"] == "presence.online"]


def _ids(agent) -> tuple[int, int]:
    return agent.info["project"]["id"], agent.info["workspace"]["id"]


def test_a_beat_stores_its_presence_as_the_json_of_its_fields_on_every_call(app, alice):
    project_id, ws_id = _ids(alice)
    for branch in ("main", "main", "feature/x", "main"):  # a memo hit, a miss, and back
        alice.client.get("/v1/whoami", headers={**alice._h(), "X-Wire-Branch": branch, "X-Wire-Host": "box"})
        want = json.dumps({"branch": branch, "host": "box", "alias": "alice"})
        assert _stored_presence(app, project_id, ws_id) == want


def test_a_beat_with_git_state_stores_it_with_the_rest_of_its_presence(app, alice):
    project_id, ws_id = _ids(alice)
    git = json.dumps({"branch": "feature/x", "head": "abc1234", "ahead": 1, "behind": 0, "idle": 5})
    alice.client.get("/v1/whoami", headers={**alice._h(), "X-Wire-Branch": "feature/x", "X-Wire-Git": git})
    stored = json.loads(_stored_presence(app, project_id, ws_id))
    assert list(stored) == ["branch", "host", "alias", "git"]
    assert stored["branch"] == "feature/x"
    assert stored["git"]["head"] == "abc1234" and "active" in stored["git"]
    alice.get("/whoami")  # without git state again: the memo's text, without git
    assert "git" not in json.loads(_stored_presence(app, project_id, ws_id))


def test_the_online_event_is_the_compact_json_of_who_came_back(app, alice):
    project_id, ws_id = _ids(alice)
    st = app.extensions["beadwire"]
    st.redis.prune_presence(project_id, before=9e12)  # offline: the next beat announces it again
    alice.client.get("/v1/whoami", headers={**alice._h(), "X-Wire-Branch": "main", "X-Wire-Host": "box"})
    want = compact({"workspace": ws_id, "alias": "alice", "role": "developer", "human": "Alice",
                    "branch": "main", "host": "box"})
    assert _online_events(app, project_id)[-1] == want


def test_beat_texts_are_those_encoded_from_the_dicts():
    presence, online = _beat_texts(7, "ana", "developer", "Ána", "main", "host-1")
    assert presence == json.dumps({"branch": "main", "host": "host-1", "alias": "ana"})
    assert online == compact({"workspace": 7, "alias": "ana", "role": "developer", "human": "Ána",
                              "branch": "main", "host": "host-1"})
    assert _beat_texts(7, "ana", "reviewer", "Ána", "main", "host-1")[1] != online  # a new role: new text


def test_beat_rates_follow_the_settings_object_asked_about(settings):
    strict = settings.with_(rate_token=1, rate_token_burst=3, rate_project=2, rate_project_burst=5)
    assert _beat_rates(settings) == (Rate(settings.rate_token, settings.rate_token_burst),
                                     Rate(settings.rate_project, settings.rate_project_burst))
    assert _beat_rates(strict) == (Rate(1, 3), Rate(2, 5))  # another object: its own shapes
    assert _beat_rates(settings)[0] == Rate(settings.rate_token, settings.rate_token_burst)
