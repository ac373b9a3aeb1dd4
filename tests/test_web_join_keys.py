"""Join keys: a single-use key that registers one agent into its project (never as coordinator),
and `GET /llms.txt`, the guide an agent follows to use one."""

from __future__ import annotations

import re

import pytest

from store import retention
from store.models import JoinKey, Workspace
from store.util import hash_secret

ORIGIN = "git@github.com:acme/shop.git"


@pytest.fixture
def lead(make_agent):
    return make_agent(alias="lead")


def mint(client, bearer: str):
    return client.post("/v1/join-keys", json={}, headers={"Authorization": f"Bearer {bearer}"})


def join(client, key: str, alias: str = "newbie", project: str = "shop", role: str = "frontend"):
    body = {"project": project, "repo_origin": ORIGIN, "alias": alias, "role": role, "human": "Ann"}
    return client.post("/v1/init", json=body, headers={"Authorization": f"Bearer {key}"})


def test_the_project_key_makes_a_join_key_that_registers_exactly_one_agent(client, lead, make_agent):
    made = mint(client, make_agent.keys["shop"])
    assert made.status_code == 201, made.json
    key = made.json["join_key"]
    assert key.startswith("bw_jk_") and made.json["project"] == "shop" and made.json["expires_at"]
    assert made.json["join"] == f"wire init --project shop --join-key {key}"
    joined = join(client, key)
    assert joined.status_code == 201, joined.json
    assert joined.json["workspace"]["alias"] == "newbie" and joined.json["workspace"]["role"] == "frontend"
    assert "project_key" not in joined.json
    me = client.get("/v1/whoami", headers={"Authorization": f"Bearer {joined.json['token']}"})
    assert me.status_code == 200 and me.json["alias"] == "newbie"
    again = join(client, key, alias="second")
    assert again.status_code == 410 and "used already" in again.json["error"]["message"]
    assert not Workspace.select().where(Workspace.alias == "second").exists()


def test_a_coordinator_makes_join_keys_and_a_developer_may_not(client, lead, make_agent):
    boss = make_agent(alias="boss", role="coordinator", key=make_agent.keys["shop"])
    assert boss.info["workspace"]["role"] == "coordinator"
    assert boss.post("/join-keys").status_code == 201
    refused = lead.post("/join-keys")
    assert refused.status_code == 403 and "coordinator" in refused.json["error"]["message"]
    assert client.post("/v1/join-keys", json={}).status_code == 401


def test_an_expired_key_is_refused_with_a_clear_message(client, lead, make_agent):
    key = mint(client, make_agent.keys["shop"]).json["join_key"]
    JoinKey.update(expires_ts=JoinKey.created_ts - 1).execute()
    refused = join(client, key)
    assert refused.status_code == 410 and "expired" in refused.json["error"]["message"]
    assert refused.json["error"]["code"] == "join_key_gone"
    assert not Workspace.select().where(Workspace.alias == "newbie").exists()


def test_a_key_of_another_project_joins_nothing(client, lead, make_agent):
    make_agent(project="other", alias="them")
    theirs = mint(client, make_agent.keys["other"]).json["join_key"]
    refused = join(client, theirs, project="shop")
    assert refused.status_code == 403
    assert "does not let anyone join project shop" in refused.json["error"]["message"]
    unknown = join(client, "bw_jk_" + "x" * 43)
    assert unknown.status_code == 403 and unknown.json["error"]["code"] == "join_key_refused"
    nowhere = join(client, theirs, project="nosuchproject")
    assert nowhere.status_code == 403 and not Workspace.select().where(Workspace.alias == "newbie").exists()
    assert join(client, theirs, project="other").status_code == 201  # still good where it belongs


def test_a_join_key_never_makes_a_coordinator_and_survives_the_attempt(client, lead, make_agent):
    key = mint(client, make_agent.keys["shop"]).json["join_key"]
    refused = join(client, key, role="coordinator")
    assert refused.status_code == 403 and "cannot register a coordinator" in refused.json["error"]["message"]
    assert join(client, key, role="developer").status_code == 201


def test_only_the_hash_is_stored(client, lead, make_agent):
    key = mint(client, make_agent.keys["shop"]).json["join_key"]
    row = JoinKey.get()
    assert row.key_hash == hash_secret(key) and key not in repr(row.__data__)
    assert row.created_by == "project key"


def test_a_bad_alias_with_a_join_key_is_a_422_and_leaves_the_key_usable(client, lead, make_agent):
    key = mint(client, make_agent.keys["shop"]).json["join_key"]
    taken = join(client, key, alias="lead")
    assert taken.status_code == 409 and "taken" in taken.json["error"]["message"]
    assert join(client, key, alias="fresh").status_code == 201


def test_retention_deletes_used_and_expired_keys_and_keeps_fresh_ones(app, client, lead, make_agent):
    keys = [mint(client, make_agent.keys["shop"]).json["join_key"] for _ in range(3)]
    join(client, keys[0])
    JoinKey.update(expires_ts=0).where(JoinKey.key_hash == hash_secret(keys[1])).execute()
    assert retention.purge_history(app.extensions["beadwire"])["join_keys"] == 2
    assert [r.key_hash for r in JoinKey.select()] == [hash_secret(keys[2])]


# -- /llms.txt -------------------------------------------------------------------------------------

def fenced_commands(text: str) -> list[str]:
    blocks = re.findall(r"^```\n(.*?)^```$", text, flags=re.M | re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("wire ")]


def test_llms_txt_is_plain_text_with_this_servers_url_and_no_token_needed(client):
    got = client.get("/llms.txt", base_url="http://wire.example.com:8080")
    assert got.status_code == 200 and got.mimetype == "text/plain"
    text = got.get_data(as_text=True)
    assert "export WIRE_URL=http://wire.example.com:8080\n" in text
    assert "http://wire.example.com:8080/agents/add" in text
    for question in ("Project", "Role (<role>)", "Name (<name>)", "More agents"):
        assert f"- {question}" in text


def test_every_command_llms_txt_names_exists_and_the_key_ones_are_there(client):
    from click import Context

    from cli import COMMANDS, cli
    from web.llms import NOT_FOR_AGENTS, command

    text = client.get("/llms.txt").get_data(as_text=True)
    lines = fenced_commands(text)
    ctx = Context(cli, info_name="wire")
    root_flags = {o for p in cli.params for o in getattr(p, "opts", [])}
    for line in lines:
        if line.split()[1].startswith("--"):
            assert line.split()[1] in root_flags, line
            continue
        words = [w for w in line.split()[1:3] if re.fullmatch(r"[a-z-]+", w)]
        path = tuple(words[:2]) if words and words[0] in ("mail", "chat", "key") else tuple(words[:1])
        cmd = command(ctx, path)
        for flag in re.findall(r"(?<= )--[a-z-]+", line):
            assert flag in {o for p in cmd.params for o in getattr(p, "opts", [])}, (line, flag)
    starts = {" ".join(line.split()[:3 if line.split()[1] in ("mail", "chat") else 2]) for line in lines}
    assert "wire --version" in starts
    assert {"wire init", "wire prime", "wire setup", "wire ready", "wire claim", "wire close",
            "wire mail send", "wire mail open", "wire chat ask", "wire escalate",
            "wire add-worktree"} <= starts
    assert "--join-key <join-key>" in next(line for line in lines if line.startswith("wire init"))
    listed = set(re.findall(r"^- wire ([a-z-]+):", text, flags=re.M))
    assert listed == set(COMMANDS) - set(NOT_FOR_AGENTS)  # the reference: every agent command, nothing else


def test_a_guide_naming_a_missing_option_cannot_be_built(monkeypatch):
    from web import llms

    llms.render.cache_clear()
    monkeypatch.setattr(llms, "LOOP", [(("claim",), ["<id>", "--no-such-flag"])])
    with pytest.raises(LookupError, match="no-such-flag"):
        llms.render("http://x")
    monkeypatch.setattr(llms, "LOOP", [(("grab",), ["<id>"])])
    with pytest.raises(LookupError, match="wire grab"):
        llms.render("http://y")
    llms.render.cache_clear()


# -- the dashboard's "Add an agent" page -------------------------------------------------------------

def login(client, bearer: str) -> None:
    from tests.test_dashboard import redeem

    link = client.post("/v1/dashboard/link", headers={"Authorization": f"Bearer {bearer}"}, json={})
    assert redeem(client, link.json["path"]).status_code == 303


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_add_an_agent_page_makes_a_join_key_that_works_once(app, lead, make_agent):
    browser = app.test_client()
    login(browser, make_agent.keys["shop"])
    team = browser.get("/team").get_data(as_text=True)
    assert 'href="/agents/add"' in team
    page = browser.get("/agents/add").get_data(as_text=True)
    assert "http://localhost/llms.txt" in page and "Project: shop" in page and "bw_jk_" not in page
    made = browser.post("/agents/add", data={"csrf_token": csrf_of(page)})
    assert made.status_code == 200
    text = made.get_data(as_text=True)
    key = re.search(r"Join key \(single use, valid until [^)]+\): (bw_jk_[A-Za-z0-9_-]+)", text).group(1)
    assert join(browser, key).status_code == 201
    assert join(browser, key, alias="again").status_code == 410
    assert JoinKey.get().created_by.startswith("dashboard")


def test_the_page_refuses_a_post_without_csrf_and_a_read_only_session(app, lead, make_agent):
    browser = app.test_client()
    login(browser, make_agent.keys["shop"])
    assert browser.post("/agents/add", data={}).status_code == 403
    viewer = app.test_client()
    login(viewer, lead.token)
    page = viewer.get("/agents/add").get_data(as_text=True)
    assert "can only read" in page
    assert viewer.post("/agents/add", data={"csrf_token": csrf_of(page)}).status_code == 403
    assert JoinKey.select().count() == 0


def test_the_page_escapes_the_project_name_it_shows(app, make_agent):
    from store.models import Project

    make_agent(project="evil", alias="e")
    Project.update(slug="ev<script>il").where(Project.slug == "evil").execute()  # as if it got in somehow
    browser = app.test_client()
    login(browser, make_agent.keys["evil"])
    html = browser.get("/agents/add").get_data(as_text=True)
    assert "<script>il" not in html and "ev&lt;script&gt;il" in html
