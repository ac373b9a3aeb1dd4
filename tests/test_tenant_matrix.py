"""The tenant-isolation matrix: every endpoint of the API, from the URL map, checked three ways.

1. Project B's token (or key) gets 404 on every object of project A named in a path (beads, mail,
   escalations, workspaces), whatever the endpoint.
2. An agent's token gets 403 on every human-only endpoint (answer escalations, webhook, policy
   changes, key rotation, revocation).
3. `MATRIX` holds, per endpoint, the probes that say what "isolated" means for it (B sees nothing of
   A in a list; a workspace cannot release another's claim, read another's mail or escalation, ...).
   An endpoint without an entry fails `test_every_endpoint_has_a_matrix_entry`: a new endpoint
   cannot ship without saying how it keeps tenants apart.
4. `DASHBOARD` does the same for the pages: project B's human session sees nothing of A, and gets 404
   on A's bead page and escalation answer; a new page without probes fails too.

After all of it, project A is exactly as it was, and its key and tokens still work.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from web.openapi import is_api, operations

#: A word only project A's data contains (its aliases too): any answer to B holding it is a leak.
SECRET = "zebra"
ORIGIN = "git@github.com:acme/shop.git"
CLEAN = "clean"  # a probe's expectation: 2xx, and nothing of project A in the answer


@dataclass
class Probe:
    """One call: who makes it, what, and what must come back (a status, or CLEAN)."""

    who: str  # eve, key_b (project B); ana, bob, cora, key_a (project A)
    method: str
    path: str
    body: Any = None
    expect: Any = CLEAN
    #: markers that must not appear in the answer (beyond SECRET for B's callers)
    hidden: tuple[str, ...] = ()


@dataclass
class World:
    """Project A (shop: zebra-ana, zebra-bob developers, zebra-cora coordinator) with one of every
    object, and project B (rival: eve) on the same repository."""

    client: Any
    bearer: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def call(self, who: str, method: str, path: str, body: Any = None):
        headers = {"Authorization": f"Bearer {self.bearer[who]}"} if who != "anonymous" else {}
        if body is None and method in ("POST", "PUT", "PATCH", "DELETE"):
            body = {}
        return self.client.open(f"/v1{path}", method=method, json=body, headers=headers)

    def fill(self, value: Any) -> Any:
        """`value` with `{held}`, `{mail}`, ... replaced by A's ids, in strings at any depth."""
        if isinstance(value, str):
            for name, ident in self.ids.items():
                value = value.replace("{" + name + "}", str(ident))
            return value
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


def _ok(world: World, who: str, method: str, path: str, body: Any = None, status: int = 200):
    r = world.call(who, method, path, body)
    assert r.status_code == status, (method, path, r.status_code, r.get_json())
    return r.get_json()


@pytest.fixture
def world(make_agent, client) -> World:
    w = World(client)
    ana = make_agent(project="shop", origin=ORIGIN, alias="zebra-ana", human="Zebra Ana")
    bob = make_agent(project="shop", origin=ORIGIN, alias="zebra-bob")
    cora = make_agent(project="shop", origin=ORIGIN, alias="zebra-cora", role="coordinator")
    eve = make_agent(project="rival", origin=ORIGIN, alias="eve")
    w.bearer = {"ana": ana.token, "bob": bob.token, "cora": cora.token, "eve": eve.token,
                "key_a": make_agent.keys["shop"], "key_b": make_agent.keys["rival"]}
    held = _ok(w, "ana", "POST", "/beads", {"title": f"{SECRET} held"}, 201)["id"]
    _ok(w, "ana", "POST", f"/beads/{held}/claim")
    free = _ok(w, "ana", "POST", "/beads", {"title": f"{SECRET} free", "blocked_by": [held]}, 201)["id"]
    mail = _ok(w, "ana", "POST", "/mail", {"to": "zebra-bob", "body": f"{SECRET} mailsecret"}, 201)
    chat = _ok(w, "ana", "POST", "/chat", {"to": "zebra-cora", "body": f"{SECRET} chatsecret"}, 201)
    esc = _ok(w, "ana", "POST", "/escalations", {"subject": f"{SECRET} escsecret", "situation": "s"}, 201)
    _ok(w, "ana", "POST", "/locks", {"paths": ["src/zebra/**"], "reason": SECRET})
    _ok(w, "ana", "POST", "/handoffs", {"body": f"{SECRET} handoffsecret"}, 201)
    _ok(w, "key_a", "PUT", "/project/webhook", {"url": f"https://hooks.example/{SECRET}"})
    bundle = {"invariants": f"{SECRET} rule", "playbooks": {"developer": SECRET}}
    _ok(w, "key_a", "PUT", "/policy", bundle, 201)
    _ok(w, "key_a", "POST", "/humans", {"name": "zebra-maria", "email": "zebra@example.com"}, 201)
    _ok(w, "eve", "POST", "/beads", {"title": "rival work"}, 201)
    _ok(w, "cora", "PATCH", "/project/settings", {"ready_scope": "role", "idle_claim_minutes": 17})
    line = json.dumps({"id": "bd-synced", "title": f"{SECRET} synced"})
    synced = _ok(w, "ana", "POST", "/sync", {"jsonl": line, "mode": "incremental"})
    w.ids = {"held": held, "free": free, "mail": mail["message"]["id"], "chat": chat["message"]["id"],
             "esc": esc["id"], "sync": synced["sync"]}
    return w


def snapshot(world: World) -> dict[str, Any]:
    """Everything of project A, as its members and its key see it."""
    calls = [("ana", "/beads?all=1"), ("ana", "/claims"), ("ana", "/locks"), ("bob", "/mail"),
             ("cora", "/chat/pending"), ("key_a", "/escalations"), ("key_a", "/project/webhook"),
             ("key_a", "/policy/bundle"), ("ana", "/handoffs/latest"), ("ana", "/workspaces"),
             ("ana", "/project/settings"), ("key_a", "/humans")]
    out = {}
    for who, path in calls:
        body = _ok(world, who, "GET", path)
        out[f"{who} {path}"] = _drop_volatile(body)
    return out


def _drop_volatile(value: Any) -> Any:
    """Presence moves with every call: keep what the tenant owns, not when it was last seen."""
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items()
                if k not in ("last_seen", "online", "status", "seconds_left", "branch", "hostname")}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


def unechoed(response: Any, path: str, body: Any) -> str:
    """The answer's text without what the request itself said (a 404 may name the alias it was
    asked for): what is left can only leak what the caller did not know."""
    text = response.get_data(as_text=True)
    said = [s for s in re.split(r"[/?&=:]", path) if s] + _strings(body)
    for piece in sorted(said, key=len, reverse=True):
        text = text.replace(piece, "")
    return text


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# -- 1. B gets 404 on every object of A named in a path ----------------------------------------------

#: Which of A's objects stands in for each path argument; B's caller per auth kind.
ARGUMENTS = {"ref": "{held}", "escalation_id": "{esc}", "message_id": "{mail}", "alias": "zebra-ana",
             "run_id": "{sync}", "name": "zebra-maria"}
CALLERS_OF_B = {"workspace": ("eve",), "key": ("key_b",), "either": ("eve", "key_b"), "none": ("eve",)}
#: A body valid for the endpoint, so that validation (422) cannot answer before the lookup does.
BODIES = {"beads.update_bead": {"title": "mine now"}, "beads.comment": {"text": "hi"},
          "beads.link": {"target": "bd-x"}, "beads.close": {"reason": "done"},
          "escalations_admin.respond": {"response": "no"}, "keys.set_role": {"role": "coordinator"},
          "steer.assign": {"alias": "eve"}}


def object_rules(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, path with A's objects) for every API rule that names an object."""
    out = []
    for rule in app.url_map.iter_rules():
        if not is_api(rule.endpoint) or not rule.arguments:
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", lambda m: ARGUMENTS[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, path[len("/v1"):]))
    return sorted(out)


def test_project_b_gets_404_on_every_object_of_project_a(app, world):
    before = snapshot(world)
    failures = []
    rules = object_rules(app)
    assert len(rules) >= 16
    for endpoint, method, path in rules:
        for caller in CALLERS_OF_B[operations(app)[endpoint].auth]:
            r = world.call(caller, method, world.fill(path), BODIES.get(endpoint))
            if r.status_code != 404 or SECRET in unechoed(r, path, BODIES.get(endpoint)):
                failures.append((caller, method, path, r.status_code, r.get_data(as_text=True)[:200]))
    assert failures == []
    assert snapshot(world) == before


# -- 2. agents get 403 on every human-only endpoint --------------------------------------------------

def test_an_agent_token_gets_403_on_every_human_only_endpoint(app, world):
    before = snapshot(world)
    human_only = sorted(name for name, op in operations(app).items() if op.auth == "key")
    assert {"escalations_admin.respond", "policy_admin.set_bundle", "keys.rotate", "keys.revoke"} <= (
        set(human_only))
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in human_only:
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", lambda m: ARGUMENTS[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for agent in ("ana", "cora", "eve"):  # a coordinator is still an agent
                r = world.call(agent, method, world.fill(path[len("/v1"):]), BODIES.get(rule.endpoint))
                if r.status_code != 403:
                    failures.append((agent, method, path, r.status_code))
    assert failures == []
    assert snapshot(world) == before


# -- 3. the matrix ------------------------------------------------------------------------------------

def _matrix() -> dict[str, list[Probe]]:
    p = Probe
    return {
        "openapi.document": [p("anonymous", "GET", "/openapi.json")],
        "identity.health": [p("anonymous", "GET", "/health")],
        "identity.init": [p("eve", "POST", "/init", {"project": "shop", "repo_origin": ORIGIN}, 403),
                          p("key_b", "POST", "/init", {"project": "shop", "repo_origin": ORIGIN}, 403)],
        "team.whoami": [p("eve", "GET", "/whoami")],
        "team.team_status": [p("eve", "GET", "/status")],
        "team.workspaces": [p("eve", "GET", "/workspaces")],
        "beads.list_beads": [p("eve", "GET", "/beads?all=1"), p("eve", "GET", "/beads?label=zebra"),
                             p("eve", "GET", "/beads?repo=shop")],
        "beads.create_bead": [p("eve", "POST", "/beads", {"title": "x", "parent": "{held}"}, 404),
                              p("eve", "POST", "/beads", {"title": "x", "blocked_by": ["{free}"]}, 404)],
        "beads.show_bead": [p("eve", "GET", "/beads/{held}", None, 404),
                            p("eve", "GET", "/beads/shop:{held}", None, 404)],
        "beads.history": [p("eve", "GET", "/beads/{held}/history", None, 404),
                          p("key_b", "GET", "/beads/shop:{held}/history", None, 404)],
        "beads.update_bead": [p("eve", "PATCH", "/beads/{free}", {"title": "x"}, 404),
                              p("bob", "PATCH", "/beads/{held}", {"status": "open"}, 409)],
        "beads.comment": [p("eve", "POST", "/beads/{free}/comments", {"text": "x"}, 404)],
        "beads.link": [p("eve", "POST", "/beads/{free}/deps", {"target": "{held}"}, 404)],
        "beads.deps": [p("eve", "GET", "/beads/{free}/deps", None, 404)],
        "beads.claim": [p("eve", "POST", "/beads/{free}/claim", {}, 404),
                        p("bob", "POST", "/beads/{held}/claim", {}, 409)],
        "beads.release": [p("eve", "DELETE", "/beads/{held}/claim", None, 404),
                          p("bob", "DELETE", "/beads/{held}/claim", None, 409)],
        "beads.close": [p("eve", "POST", "/beads/{held}/close", {}, 404),
                        p("bob", "POST", "/beads/{held}/close", {}, 409)],
        "beads.reopen": [p("eve", "POST", "/beads/{held}/reopen", {}, 404)],
        "beads.ready": [p("eve", "GET", "/ready")],
        "beads.wait_ready": [p("eve", "GET", "/wait-ready?bead={free}&timeout=0", None, 404),
                             p("eve", "GET", "/wait-ready?timeout=0")],
        "beads.explain": [p("eve", "GET", "/ready/{free}", None, 404)],
        "beads.mine": [p("eve", "GET", "/mine"), p("bob", "GET", "/mine", hidden=("held",))],
        "beads.search": [p("eve", "GET", "/search?q=zebra")],
        "beads.claims": [p("eve", "GET", "/claims")],
        "sync.sync": [p("eve", "POST", "/sync", {"jsonl": json.dumps({"id": "{held}", "title": "B's own"}),
                                                 "mode": "incremental"})],
        "sync.file_records": [p("eve", "GET", "/sync/records?id={held}&id=bd-synced")],
        "sync.history": [p("eve", "GET", "/sync/history")],
        "sync.undo": [p("eve", "POST", "/sync/{sync}/undo", {}, 404)],
        "mail.send": [p("eve", "POST", "/mail", {"to": "zebra-ana", "body": "hi"}, 404),
                      p("eve", "POST", "/mail", {"to": "@all", "body": "hi"}, None)],
        "mail.inbox": [p("eve", "GET", "/mail"), p("cora", "GET", "/mail", hidden=("mailsecret",))],
        "mail.sent": [p("eve", "GET", "/mail/sent"), p("bob", "GET", "/mail/sent", hidden=("mailsecret",))],
        "mail.search": [p("eve", "GET", "/mail/search?q=zebra"),
                        p("cora", "GET", "/mail/search?q=mailsecret", hidden=("mailsecret",))],
        "mail.open_mail": [p("eve", "POST", "/mail/open", {"id": "{mail}"}, 404),
                           p("cora", "POST", "/mail/open", {"id": "{mail}"}, 404),
                           p("eve", "POST", "/mail/open", {})],
        "mail.ack": [p("eve", "POST", "/mail/{mail}/ack", {}, 404),
                     p("cora", "POST", "/mail/{mail}/ack", {}, 404)],
        "mail.subscribe": [p("eve", "POST", "/beads/{free}/subscribe", {}, 404)],
        "mail.unsubscribe": [p("eve", "DELETE", "/beads/{free}/subscribe", None, 404)],
        "chat.post": [p("eve", "POST", "/chat", {"to": "zebra-cora", "body": "hi"}, 404)],
        "chat.wait": [p("eve", "GET", "/chat/wait?with=zebra-ana&timeout=0", None, 404),
                      p("bob", "GET", "/chat/wait?with=zebra-ana&timeout=0", hidden=("chatsecret",))],
        "chat.done": [p("eve", "POST", "/chat/done", {"with": "zebra-ana"}, 404)],
        "chat.pending": [p("eve", "GET", "/chat/pending"),
                         p("bob", "GET", "/chat/pending", hidden=("chatsecret",))],
        "chat.history": [p("eve", "GET", "/chat/history?with=zebra-ana", None, 404),
                         p("bob", "GET", "/chat/history?with=zebra-cora", hidden=("chatsecret",))],
        "chat.watch": [p("eve", "GET", "/watch?timeout=0"), p("eve", "GET", "/watch?timeout=0&ready=1")],
        "locks.reserve": [p("eve", "POST", "/locks", {"paths": ["src/**"]})],  # overlaps A's src/zebra/**
        "locks.release": [p("eve", "DELETE", "/locks", {"all": True}),
                          p("bob", "DELETE", "/locks", {"paths": ["src/zebra/**"]}, hidden=("zebra-ana",))],
        "locks.held": [p("eve", "GET", "/locks")],
        "locks.check": [p("eve", "GET", "/locks/check?path=src/zebra/a.py", hidden=("zebra-ana",))],
        "locks.check_many": [p("eve", "POST", "/locks/check", {"paths": ["src/zebra/a.py"]},
                               hidden=("zebra-ana",))],
        "escalations.escalate": [p("eve", "POST", "/escalations", {"subject": "q", "situation": "s"})],
        "escalations_read.list_escalations": [p("eve", "GET", "/escalations"),
                                              p("key_b", "GET", "/escalations"),
                                              p("bob", "GET", "/escalations", hidden=("escsecret",))],
        "escalations_read.show": [p("eve", "GET", "/escalations/{esc}", None, 404),
                                  p("key_b", "GET", "/escalations/{esc}", None, 404),
                                  p("bob", "GET", "/escalations/{esc}", None, 404),
                                  p("cora", "GET", "/escalations/{esc}", None, 200)],
        "escalations_admin.respond": [
            p("key_b", "POST", "/escalations/{esc}/respond", {"response": "no"}, 404),
            p("cora", "POST", "/escalations/{esc}/respond", {"response": "no"}, 403)],
        "escalations_admin.get_webhook": [p("key_b", "GET", "/project/webhook"),
                                          p("ana", "GET", "/project/webhook", None, 403)],
        "escalations_admin.put_webhook": [p("key_b", "PUT", "/project/webhook", {"url": "https://b.example/x"})],
        "escalations_admin.delete_webhook": [p("key_b", "DELETE", "/project/webhook")],
        "escalations_admin.test_webhook": [p("key_b", "POST", "/project/webhook/test", {}, 409)],
        "policy_read.show": [p("eve", "GET", "/policy"), p("key_b", "GET", "/policy?role=developer")],
        "policy_read.bundle": [p("eve", "GET", "/policy/bundle"),
                               p("key_b", "GET", "/policy/bundle?version=2", None, 404)],
        "policy_read.history": [p("eve", "GET", "/policy/history")],
        "policy_admin.set_bundle": [p("key_b", "PUT", "/policy", {"invariants": "B's rule"}, 201)],
        "policy_admin.activate": [p("key_b", "POST", "/policy/activate", {"version": 3}, 404)],
        "policy_admin.reset": [p("key_b", "POST", "/policy/reset", {}, None)],
        "handoffs.leave": [p("eve", "POST", "/handoffs", {"body": "x", "to": "zebra-ana"}, 404)],
        "handoffs.latest": [p("eve", "GET", "/handoffs/latest"),
                            p("bob", "GET", "/handoffs/latest", hidden=("handoffsecret",))],
        "handoffs.prime": [p("eve", "GET", "/prime"), p("bob", "GET", "/prime", hidden=("handoffsecret",))],
        "keys.revoke": [p("key_b", "POST", "/workspaces/zebra-ana/revoke", {}, 404)],
        "keys.set_role": [p("key_b", "PUT", "/workspaces/zebra-ana/role", {"role": "coordinator"}, 404),
                          p("ana", "PUT", "/workspaces/zebra-ana/role", {"role": "coordinator"}, 403)],
        "keys.rotate": [p("key_b", "POST", "/project/key/rotate", {})],
        "project.show_settings": [p("eve", "GET", "/project/settings"),
                                  p("key_b", "GET", "/project/settings")],
        "project.change_settings": [p("eve", "PATCH", "/project/settings", {"ready_scope": "role"}, 403),
                                    p("bob", "PATCH", "/project/settings", {"ready_scope": "role"}, 403),
                                    p("key_b", "PATCH", "/project/settings", {"idle_claim_minutes": 9})],
        "steer.assign": [p("key_b", "POST", "/beads/{free}/assign", {"alias": "eve"}, 404),
                         p("ana", "POST", "/beads/{free}/assign", {"alias": "zebra-bob"}, 403),
                         p("eve", "POST", "/beads/{free}/assign", {"alias": "eve"}, 404)],
        "steer.unassign": [p("key_b", "DELETE", "/beads/{free}/assign", None, 404),
                           p("bob", "DELETE", "/beads/{free}/assign", None, 403)],
        "steer.pause": [p("key_b", "POST", "/workspaces/zebra-ana/pause", {"reason": "x"}, 404),
                        p("ana", "POST", "/workspaces/zebra-bob/pause", {}, 403)],
        "steer.resume": [p("key_b", "DELETE", "/workspaces/zebra-ana/pause", None, 404),
                         p("bob", "DELETE", "/workspaces/zebra-ana/pause", None, 403)],
        "steer.audit_log": [p("key_b", "GET", "/audit"), p("key_b", "GET", "/audit?who=zebra-ana"),
                            p("bob", "GET", "/audit", None, 403)],
        "dashboard_api.mint_link": [p("eve", "POST", "/dashboard/link", {}, None),
                                    p("key_b", "POST", "/dashboard/link", {}, None)],
        "humans.list_humans": [p("key_b", "GET", "/humans"), p("ana", "GET", "/humans", None, 403)],
        "humans.add_human": [p("key_b", "POST", "/humans", {"name": "b-maria"}, 201),
                             p("cora", "POST", "/humans", {"name": "c-maria"}, 403)],
        "humans.reinvite": [p("key_b", "POST", "/humans/zebra-maria/invite", {}, 404)],
        "humans.remove_human": [p("key_b", "DELETE", "/humans/zebra-maria", None, 404),
                                p("cora", "DELETE", "/humans/zebra-maria", None, 403)],
        "humans.whoami": [p("key_b", "GET", "/humans/me"), p("eve", "GET", "/humans/me", None, 403)],
        "invites.redeem": [
            p("anonymous", "POST", "/invites/redeem", {"invite": "bw_hi_notarealinvite"}, 401)],
        # B's key makes a key for B only (A's name appears nowhere); B's developer may not make one
        "joinkeys.create": [p("key_b", "POST", "/join-keys", {}, 201),
                            p("eve", "POST", "/join-keys", {}, 403)],
    }


MATRIX = _matrix()


def test_every_endpoint_has_a_matrix_entry(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if is_api(rule.endpoint)}
    assert sorted(endpoints - set(MATRIX)) == [], "add the new endpoint's isolation probes to MATRIX"
    assert sorted(set(MATRIX) - endpoints) == []


def test_every_probe_of_the_matrix_holds_and_project_a_is_untouched(world):
    before = snapshot(world)
    failures = []
    for endpoint, probes in MATRIX.items():
        for probe in probes:
            r = world.call(probe.who, probe.method, world.fill(probe.path), world.fill(probe.body))
            text = unechoed(r, world.fill(probe.path), world.fill(probe.body))
            secrets = probe.hidden + ((SECRET,) if probe.who in ("eve", "key_b") else ())
            leaks = [m for m in secrets if m in text]
            wanted = probe.expect
            ok_status = (200 <= r.status_code < 300) if wanted in (CLEAN, None) else r.status_code == wanted
            if wanted is None:  # whatever the status (not a 500), nothing of A may leak
                ok_status = r.status_code < 500
            if not ok_status or leaks:
                failures.append((endpoint, probe.who, probe.method, probe.path, r.status_code, leaks,
                                 text[:200]))
            if endpoint == "keys.rotate" and r.status_code == 200:
                world.bearer["key_b"] = r.get_json()["project_key"]
    assert failures == []
    assert snapshot(world) == before
    for who in ("ana", "bob", "cora"):
        assert world.call(who, "GET", "/whoami").status_code == 200



# -- 4. the dashboard (pages behind a session cookie) ----------------------------------------------------

#: Non-API endpoints and how project B's human session (or anyone) probes them: (method, path, status);
#: None for the status: any answer below 500. Every answer must be free of project A's data.
DASHBOARD: dict[str, list[tuple[str, str, Any]]] = {
    "dashboard.home": [("GET", "/", None)],
    "dashboard.team": [("GET", "/team", 200)],
    "dashboard.work": [("GET", "/work", 200), ("GET", "/work?q=zebra", 200)],
    "dashboard.graph": [("GET", "/work/graph", 200)],
    "dashboard.bead": [("GET", "/work/bead/{held_pk}", 404)],
    "dashboard.chat": [("GET", "/chat", 200)],
    "dashboard.conversation": [("GET", "/chat/{chat_thread}", None)],
    "dashboard.mail": [("GET", "/mail", 200), ("GET", "/mail?q=zebra", 200)],
    "dashboard.escalations": [("GET", "/escalations", 200)],
    "dashboard.answer": [("POST", "/escalations/{esc}/answer", 404)],
    "dashboard.activity": [("GET", "/activity", 200)],
    "dashboard.policy": [("GET", "/policy", 200)],
    "dashboard.invite": [("GET", "/invite/bw_hi_notarealinvitenotarealinvite", 401)],
    "dashboard.invite_post": [("POST", "/invite/bw_hi_notarealinvitenotarealinvite", 403)],  # no CSRF cookie
    "dashboard.overview": [("GET", "/overview", 200)],
    "dashboard.people": [("GET", "/people", 200)],
    "dashboard.add_person": [("POST", "/people", 422)],  # no name given
    "dashboard.remove_person": [("POST", "/people/zebra-maria/remove", 404)],
    "dashboard.switch": [("POST", "/switch", 404)],  # the project key's session is no person's
    # the forms (web/dashboard_actions.py): B's session posts `response` only, so most are a 422 before
    # anything is looked up; those naming A's objects are 404s
    "dashboard.send_mail": [("POST", "/mail/send", 422)],
    "dashboard.start_chat": [("POST", "/chat/start", 422)],
    "dashboard.reply": [("POST", "/chat/{chat_thread}/reply", 404)],
    "dashboard.create_bead": [("POST", "/work/new", 422)],
    "dashboard.edit_bead": [("POST", "/work/bead/{held_pk}/edit", 404)],
    "dashboard.comment": [("POST", "/work/bead/{held_pk}/comment", 404)],
    "dashboard.link": [("POST", "/work/bead/{held_pk}/link", 404)],
    "dashboard.release": [("POST", "/work/bead/{held_pk}/release", 404)],
    "dashboard.close": [("POST", "/work/bead/{held_pk}/close", 404)],
    "dashboard.reopen": [("POST", "/work/bead/{held_pk}/reopen", 404)],
    "dashboard.assign": [("POST", "/work/bead/{held_pk}/assign", 404)],
    "dashboard.unassign": [("POST", "/work/bead/{held_pk}/unassign", 404)],
    "dashboard.revoke": [("POST", "/team/ana/revoke", 404)],
    "dashboard.preview_policy": [("POST", "/policy/preview", 422)],
    "dashboard.save_policy": [("POST", "/policy/save", 422)],
    "dashboard.activate_policy": [("POST", "/policy/activate", 422)],
    "dashboard.add_agent": [("GET", "/agents/add", 200)],
    "dashboard.add_agent_post": [("POST", "/agents/add", 200)],  # a key for B, shown to B
    "llms.llms_txt": [("GET", "/llms.txt", 200)],
    "dashboard.pause": [("POST", "/team/zebra-ana/pause", 404)],
    "dashboard.resume": [("POST", "/team/zebra-ana/resume", 404)],
    "dashboard.audit_page": [("GET", "/audit", 200), ("GET", "/audit?who=zebra-ana", 200)],
    "dashboard.audit_json": [("GET", "/audit.json", 200)],
    "dashboard.audit_csv": [("GET", "/audit.csv", 200)],
    "dashboard.login": [("GET", "/login", 200)],
    "dashboard.login_post": [("POST", "/login", 403)],  # no CSRF cookie of the login form
    "dashboard.login_link": [("GET", "/login/1.notarealsecretnotarealsecret", 401)],
    "dashboard.login_link_post": [("POST", "/login/1.notarealsecretnotarealsecret", 403)],  # no CSRF cookie
    "dashboard.logout": [("POST", "/logout", None)],
    "metrics.scrape": [("GET", "/metrics", 200)],
}
#: Endpoints left out of the probes above, with the test that covers them instead.
DASHBOARD_ELSEWHERE = {
    "static": "Flask's static files: no tenant data",
    "ws.events": "a websocket per session's project: tests/test_dashboard_ws.py",
}


def test_every_page_has_a_dashboard_matrix_entry(app):
    pages = {rule.endpoint for rule in app.url_map.iter_rules() if not is_api(rule.endpoint)}
    unprobed = pages - set(DASHBOARD) - set(DASHBOARD_ELSEWHERE)
    assert sorted(unprobed) == [], "add the page's probes to DASHBOARD"
    assert sorted(set(DASHBOARD) - pages) == []


def test_project_bs_dashboard_session_sees_and_answers_nothing_of_project_a(app, world):
    from store.models import Bead, Message

    before = snapshot(world)
    world.ids["held_pk"] = Bead.get(Bead.ref == world.ids["held"]).id
    world.ids["chat_thread"] = Message.get_by_id(world.ids["chat"]).thread
    browser = app.test_client()
    link = world.call("key_b", "POST", "/dashboard/link", {})
    assert link.status_code == 201, link.get_json()
    from tests.test_dashboard import redeem

    assert redeem(browser, link.get_json()["path"]).status_code == 303  # B's human session
    page = browser.get("/escalations").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    failures = []
    for endpoint, probes in DASHBOARD.items():
        for method, path, status in probes:
            data = {"csrf_token": csrf, "response": "B answers"} if method == "POST" else None
            r = browser.open(world.fill(path), method=method, data=data)
            text = unechoed(r, world.fill(path), None)
            ok = r.status_code < 500 if status is None else r.status_code == status
            if not ok or SECRET in text:
                failures.append((endpoint, method, path, r.status_code, SECRET in text))
    assert failures == []
    assert snapshot(world) == before
