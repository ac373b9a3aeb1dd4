"""Claims carry their git state, and holders idle with a claim are seen (issue 18).

Real git repos in temp dirs, the real `wire` commands in-process (their HTTP calls answered by the
Flask test client), the real Redis (fake and real, through the fixtures), an injected clock for idling.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli, gitstate, local
from cli.client import Client
from store import gitstate as store_gitstate
from store.keys import Keys
from store.models import BeadCommit
from tests.clock import FakeClock
from tests.test_dashboard import _login
from tests.test_security_keys import FlaskTransport
from web.gitstate import MAX_GIT_HEADER, parse_git

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}


# -- helpers ----------------------------------------------------------------------------------------

def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV, **(env or {})})
    return done.stdout.strip()


def commit(root: Path, message: str, when: float | None = None) -> str:
    """A commit touching its own file; `when` sets its dates (epoch seconds)."""
    name = f"f{len(list(root.glob('f*')))}.txt"
    (root / name).write_text(message)
    git(root, "add", name)
    dates = {}
    if when:
        stamp = f"@{int(when)} +0000"
        dates = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    git(root, "commit", "-qm", message, env=dates)
    return git(root, "rev-parse", "--short", "HEAD")


def worktree(tmp_path: Path, agent, branch: str = "wire/bob") -> Path:
    """A repo with one commit on main, checked out on `branch`, registered as `agent`'s worktree."""
    root = tmp_path / agent.alias
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "start", when=time.time() - 7200)
    git(root, "checkout", "-q", "-b", branch)
    local.write_workspace(root, {"url": "http://wire.test", "token": agent.token, "project": "shop"})
    return root


def wire(agent, root: Path | None, *args: str):
    """Run `wire ARGS` in worktree `root` (None: no worktree, the token injected) as `agent`, in-process."""
    where = {"start": root} if root else {"url": "http://wire.test", "token": agent.token}
    obj = Client(transport=FlaskTransport(agent.client), auto_reserve=False, write_through=False, **where)
    return CliRunner().invoke(cli, list(args), obj=obj, catch_exceptions=False)


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def project_id(agent) -> int:
    return agent.info["project"]["id"]


def beat(agent, git_state: dict | str | None):
    """One authenticated call carrying `git_state` as its `X-Wire-Git` header."""
    headers = {"Authorization": f"Bearer {agent.token}"}
    if git_state is not None:
        headers["X-Wire-Git"] = git_state if isinstance(git_state, str) else json.dumps(git_state)
    return agent.client.get("/v1/whoami", headers=headers)


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The server's clock for heartbeats and the team view (the sweep takes its time as an argument)."""
    c = FakeClock()
    import store.dashboard
    import store.workspaces

    monkeypatch.setattr(store.workspaces, "now", c)
    monkeypatch.setattr(store.dashboard, "now", c)
    monkeypatch.setattr(store_gitstate, "now", c)
    return c


# -- the header ---------------------------------------------------------------------------------------

def test_the_idle_notice_key_is_pinned():
    assert Keys("bw").idle_noticed_key(3) == "bw:{p:3}:idle"


def test_a_valid_header_is_read_and_bad_ones_are_ignored():
    good = {"branch": "wire/bob", "head": "abc1234", "base": "main", "ahead": 3, "behind": 1, "idle": 5,
            "commits": [{"sha": "abc1234", "bead": "bd-1", "subject": "bd-1: fix", "ts": 1}], "extra": "x"}
    parsed = parse_git(json.dumps(good))
    assert (parsed["branch"] == "wire/bob" and parsed["ahead"] == 3
            and parsed["commits"][0]["sha"] == "abc1234")
    assert "extra" not in parsed
    assert parse_git("not json") is None
    assert parse_git("[1, 2]") is None
    assert parse_git(json.dumps({**good, "ahead": -1})) is None
    assert parse_git(json.dumps({**good, "ahead": "3"})) is None
    assert parse_git(json.dumps({**good, "commits": [{"sha": "zz", "bead": "bd-1"}]})) is None
    assert parse_git(json.dumps({**good, "commits": [{"sha": "abcd", "bead": "bd-1"}] * 21})) is None
    assert parse_git(json.dumps({**good, "branch": "a\u0000b"})) is None
    assert parse_git(json.dumps({**good, "branch": "x" * (MAX_GIT_HEADER + 1)})) is None


@pytest.mark.parametrize("value", ["{", "x" * (MAX_GIT_HEADER + 10), '{"ahead": 1e400}',
                                   '{"branch": "\\ud800"}',
                                   '{"commits": [{"sha": "abcd", "bead": "bd-1", "ts": NaN}]}'])
def test_a_bad_header_never_fails_the_call_and_is_not_stored(app, make_agent, value):
    bob = make_agent(alias="bob")
    r = beat(bob, value)
    assert r.status_code == 200, r.json
    st = app.extensions["beadwire"]
    assert "git" not in st.redis.presence_of(project_id(bob), bob.info["workspace"]["id"])


def test_presence_keeps_the_git_state_with_the_server_clock(app, make_agent, clock):
    bob = make_agent(alias="bob")
    assert beat(bob, {"branch": "wire/bob", "ahead": 2, "idle": 60}).status_code == 200
    stored = app.extensions["beadwire"].redis.presence_of(project_id(bob), bob.info["workspace"]["id"])
    assert stored["git"]["branch"] == "wire/bob" and stored["git"]["ahead"] == 2
    assert stored["git"]["active"] == pytest.approx(clock.t - 60)


# -- the CLI reports it, close records it, show and status list it ------------------------------

def test_a_claim_reports_branch_ahead_and_the_commits_naming_the_bead(app, make_agent, tmp_path):
    coord = make_agent(alias="cora", role="coordinator")
    bob = make_agent(alias="bob")
    ref = bob.create("Fix the cart")
    other = bob.create("Something else")
    root = worktree(tmp_path, bob)
    commit(root, f"{ref}: an old commit, before the claim", when=time.time() - 3600)
    ok(wire(bob, root, "claim", ref))
    assert ref in gitstate.claims(root)
    first = commit(root, f"{ref}: total rounds half up")
    commit(root, f"refactor, see {other}")  # names another bead
    second = commit(root, f"tests for the cart total ({ref})")
    status = ok(wire(bob, root, "status"))
    assert f"{ref} bob on wire/bob, 4 ahead, not merged" in status
    # the coordinator sees it in its own `wire status`, and in the JSON
    seen = ok(wire(coord, None, "status", "--json"))
    claim = next(w for w in json.loads(seen)["team"] if w["alias"] == "bob")["claims"][0]
    assert claim["git"]["branch"] == "wire/bob" and claim["git"]["ahead"] == 4 and not claim["git"]["merged"]
    assert [c["sha"] for c in claim["git"]["commits"]] == [second, first]
    shown = ok(wire(coord, None, "show", ref))
    assert "work: on wire/bob, 4 ahead, not merged" in shown
    assert first in shown and "total rounds half up" in shown and "old commit" not in shown


def test_close_records_the_commits_and_show_lists_them_after(app, make_agent, tmp_path):
    bob = make_agent(alias="bob")
    ref = bob.create("Fix the cart")
    root = worktree(tmp_path, bob)
    ok(wire(bob, root, "claim", ref))
    sha = commit(root, f"{ref}: total rounds half up")
    closed = ok(wire(bob, root, "close", ref))
    assert f"recorded 1 commit: {sha}" in closed
    assert ref not in gitstate.claims(root)  # no claims left: the header is no longer sent
    rows = list(BeadCommit.select())
    assert [(r.sha, r.subject, r.branch) for r in rows] == [(sha, f"{ref}: total rounds half up", "wire/bob")]
    shown = json.loads(ok(wire(bob, root, "show", ref, "--json")))
    assert [c["sha"] for c in shown["commits"]] == [sha] and shown["git"] is None
    assert sha in ok(wire(bob, root, "show", ref))
    # reopened, claimed and closed again: the same commit stays recorded once, the new one joins it
    ok(wire(bob, root, "reopen", ref))
    ok(wire(bob, root, "claim", ref))
    later = commit(root, f"{ref}: one more")
    ok(wire(bob, root, "close", ref))
    assert sorted(r.sha for r in BeadCommit.select()) == sorted([sha, later])


def test_another_tenant_sees_none_of_it(app, make_agent, tmp_path):
    bob = make_agent(project="shop", alias="bob")
    eve = make_agent(project="other", alias="eve", role="coordinator")
    ref = bob.create("Secret work")
    root = worktree(tmp_path, bob)
    ok(wire(bob, root, "claim", ref))
    commit(root, f"{ref}: secret subject")
    ok(wire(bob, root, "status"))
    assert eve.get(f"/beads/{ref}").status_code == 404
    assert "secret subject" not in json.dumps(eve.get("/status").json)
    assert "wire/bob" not in json.dumps(eve.get("/status").json)


# -- the local side: claims file and idleness ------------------------------------------------------

def test_the_cli_counts_a_changed_file_as_activity_and_a_long_poll_as_none(tmp_path):
    root = tmp_path / "w"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "start")
    (root / ".wire").mkdir()
    t0 = time.time()
    gitstate.record_claim(root, "bd-1", t0)
    assert gitstate.idle_seconds(root, command=True, ts=t0) == 0
    assert gitstate.idle_seconds(root, command=False, ts=t0 + 100) == 100  # a long poll is no command
    (root / "f0.txt").write_text("changed")
    assert gitstate.idle_seconds(root, command=False, ts=t0 + 200) == 0  # a file changed
    assert gitstate.idle_seconds(root, command=False, ts=t0 + 260) == 60
    header = json.loads(gitstate.header(root, command=False))
    assert header["branch"] == "main" and header["base"] == "main" and header["ahead"] == 0
    gitstate.drop_claim(root, "bd-1")
    assert gitstate.header(root, command=True) is None


def test_a_commit_names_a_bead_only_by_its_whole_id():
    assert gitstate.names("bd-12: fix", "bd-12") and gitstate.names("fix (BD-12)", "bd-12")
    assert not gitstate.names("bd-123: fix", "bd-12") and not gitstate.names("xbd-12", "bd-12")
    assert not gitstate.names("bd-12.1 done", "bd-12")


def test_the_default_branch_is_origin_head_then_main_then_master(tmp_path):
    origin, clone = tmp_path / "origin.git", tmp_path / "clone"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "trunk", str(origin)], check=True)
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "trunk")
    commit(seed, "start")
    git(seed, "push", "-q", str(origin), "trunk")
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, capture_output=True)
    git(clone, "checkout", "-q", "-b", "master")
    assert gitstate.default_branch(clone) == "refs/remotes/origin/HEAD"
    git(seed, "checkout", "-q", "-b", "master")
    assert gitstate.default_branch(seed) == "refs/heads/master"


# -- idle with claim ------------------------------------------------------------------------------

def _team(make_agent):
    cora = make_agent(alias="cora", role="coordinator")
    bob = make_agent(alias="bob")
    dan = make_agent(alias="dan")
    ref = bob.create("Long job")
    assert bob.post(f"/beads/{ref}/claim").status_code == 200
    return cora, bob, dan, ref


def _notices(agent) -> list[str]:
    return [m["body"] for m in agent.get("/mail?unread=1").json if "idle" in m["body"]]


def test_one_notice_per_idle_spell_to_the_coordinators(app, make_agent, worker, clock):
    st = app.extensions["beadwire"]
    cora, bob, dan, ref = _team(make_agent)
    t0 = clock.t
    beat(bob, {"branch": "wire/bob", "idle": 0})  # a command
    beat(dan, None)  # dan holds nothing: never idle with claim
    clock.t = t0 + 28 * 60
    beat(bob, {"branch": "wire/bob", "idle": 28 * 60})  # `wire watch` keeps it online, no command
    beat(dan, None)
    assert store_gitstate.notice_idle_claims(st, t0 + 29 * 60) == 0  # not yet 30 minutes
    assert store_gitstate.notice_idle_claims(st, t0 + 31 * 60) == 1
    assert store_gitstate.notice_idle_claims(st, t0 + 32 * 60) == 0  # the same spell: told once
    clock.t = t0 + 33 * 60
    beat(bob, {"branch": "wire/bob", "idle": 33 * 60})
    assert store_gitstate.notice_idle_claims(st, t0 + 34 * 60) == 0
    worker.run()
    told = _notices(cora)
    assert len(told) == 1 and "bob is idle with a claim on" in told[0] and ref in told[0]
    assert _notices(dan) == [] and _notices(bob) == []  # a coordinator exists: only it hears
    clock.t = t0 + 35 * 60
    beat(bob, {"branch": "wire/bob", "idle": 0})  # bob works again: the spell ends
    assert store_gitstate.notice_idle_claims(st, t0 + 36 * 60) == 0
    clock.t = t0 + 64 * 60
    beat(bob, {"branch": "wire/bob", "idle": 29 * 60})
    assert store_gitstate.notice_idle_claims(st, t0 + 66 * 60) == 1  # a new spell, a new notice
    worker.run()
    assert len(_notices(cora)) == 2


def test_the_project_setting_sets_the_idle_limit(app, make_agent, worker, clock):
    st = app.extensions["beadwire"]
    cora, bob, _, _ = _team(make_agent)
    assert cora.patch("/project/settings", {"idle_claim_minutes": 45}).status_code == 200
    t0 = clock.t
    clock.t = t0 + 40 * 60
    beat(bob, {"branch": "wire/bob", "idle": 40 * 60})
    assert store_gitstate.notice_idle_claims(st, t0 + 41 * 60) == 0
    assert cora.get("/status").json["team"][1]["idle_with_claim"] is False
    clock.t = t0 + 46 * 60
    beat(bob, {"branch": "wire/bob", "idle": 46 * 60})
    assert store_gitstate.notice_idle_claims(st, t0 + 46 * 60) == 1


def test_status_and_the_dashboard_show_who_is_idle_with_a_claim(app, make_agent, client, tmp_path, clock):
    cora, bob, dan, ref = _team(make_agent)
    _login(client, make_agent.keys["shop"])  # before the clock moves: rate buckets follow the clock
    t0 = clock.t
    clock.t = t0 + 31 * 60
    beat(bob, {"branch": "wire/bob", "ahead": 3, "idle": 31 * 60})
    beat(dan, None)
    team = {w["alias"]: w for w in cora.get("/status").json["team"]}
    assert team["bob"]["idle_with_claim"] is True and team["bob"]["idle_minutes"] == 31
    assert team["dan"]["idle_with_claim"] is False and team["cora"]["idle_with_claim"] is False
    out = ok(wire(cora, None, "status"))
    assert "bob idle with claim for 31 min" in out and f"{ref} bob on wire/bob, 3 ahead, not merged" in out
    # the other tenant's coordinator hears nothing of it
    eve = make_agent(project="other", alias="eve", role="coordinator")
    assert store_gitstate.notice_idle_claims(app.extensions["beadwire"], t0 + 31 * 60) == 1
    assert _notices(eve) == []
    html = client.get("/team").get_data(as_text=True)
    row = html.split('data-alias="bob"', 1)[1].split("</tr>", 1)[0]
    assert "idle with claim · 31 min" in row and "wire/bob" in row and "not merged" in row
    dan_row = html.split('data-alias="dan"', 1)[1].split("</tr>", 1)[0]
    assert "idle with claim" not in dan_row


# -- schema 9 ---------------------------------------------------------------------------------------

def test_an_upgraded_database_records_the_commits_of_a_close(settings, database_url, real_redis):
    """A version 3 database (SQLite and PostgreSQL) migrates to schema 9 and records a close's commits."""
    from store.models import SCHEMA_VERSION
    from tests.conftest import _make_app
    from tests.test_deploy import ANA_TOKEN, _build_version_3

    assert SCHEMA_VERSION >= 9
    _build_version_3(database_url)
    app = _make_app(settings.with_(database_url=database_url), real_redis)  # migrates, as `release` does
    client = app.test_client()
    state = {"branch": "wire/ana", "ahead": 1,
             "commits": [{"sha": "abc1234", "bead": "bd-old1", "subject": "bd-old1: done", "ts": 1},
                         {"sha": "def5678", "bead": "bd-other", "subject": "not this bead"}]}
    headers = {"Authorization": f"Bearer {ANA_TOKEN}", "X-Wire-Git": json.dumps(state)}
    closed = client.post("/v1/beads/bd-old1/close", json={}, headers=headers)
    assert closed.status_code == 200, closed.json
    assert [c["sha"] for c in closed.json["commits"]] == ["abc1234"]
    again = client.post("/v1/beads/bd-old1/close", json={}, headers=headers)  # closing twice: recorded once
    assert again.status_code in (200, 409), again.json
    shown = client.get("/v1/beads/bd-old1", headers={"Authorization": f"Bearer {ANA_TOKEN}"}).json
    assert [(c["sha"], c["subject"], c["branch"]) for c in shown["commits"]] == [("abc1234", "bd-old1: done",
                                                                                   "wire/ana")]


def test_a_long_poll_keeps_the_idle_clock_running_and_a_command_resets_it(app, make_agent, tmp_path):
    cora, bob = make_agent(alias="cora", role="coordinator"), make_agent(alias="bob")
    ref = bob.create("Long job")
    root = worktree(tmp_path, bob)
    ok(wire(bob, root, "claim", ref))
    data = gitstate.read(root)
    data["command"] -= 40 * 60  # the last command, 40 minutes ago (and no file changed since)
    gitstate.write(root, data)
    st, ws_id = app.extensions["beadwire"], bob.info["workspace"]["id"]
    obj = Client(transport=FlaskTransport(bob.client), start=root, auto_reserve=False, write_through=False)
    obj.watch(0)  # what `wire watch` sends, slice after slice
    active = st.redis.presence_of(project_id(bob), ws_id)["git"]["active"]
    assert time.time() - active >= 40 * 60 - 5
    assert _member(cora, "bob")["idle_with_claim"] is True
    ok(wire(bob, root, "mine"))  # a command
    assert time.time() - st.redis.presence_of(project_id(bob), ws_id)["git"]["active"] < 5
    assert _member(cora, "bob")["idle_with_claim"] is False


def _member(viewer, alias: str) -> dict:
    return next(w for w in viewer.get("/status").json["team"] if w["alias"] == alias)
