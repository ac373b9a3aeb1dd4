"""The schemas of web/schemas/ dump the store's domain objects: their compiled `dump` sends exactly
what marshmallow's general dump would (same keys, same order, same values), for every shape a bead
answer takes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from store.access import Revoked, RoleSet, Rotated
from store.beadviews import (
    BeadView,
    Brief,
    Claimed,
    ClaimView,
    Closed,
    CommentView,
    Deps,
    DepView,
    Explained,
    ReadyWait,
    Released,
)
from store.handoffs import HandoffView, Primed
from store.joinkeys import JoinKeyMade
from store.mailviews import (
    Acked,
    ChatDone,
    ChatMessages,
    ChatPending,
    ChatPosted,
    Conversation,
    MessageView,
    Sent,
    Subscribed,
    Waiter,
)
from store.project_settings import Settings
from store.steer import Pause, PauseState
from store.teamviews import Health, InitView, ProjectRef, ProjectView, StatusView, WorkspaceView
from web.schemas import Open, compile_dump
from web.schemas import beads as s
from web.schemas import chat as ch
from web.schemas import handoffs as h
from web.schemas import identity as i
from web.schemas import joinkeys as jk
from web.schemas import keys as k
from web.schemas import mail as m
from web.schemas import project as pr
from web.schemas import steer as st
from web.schemas import watch as w


def claim(**more: Any) -> ClaimView:
    return ClaimView("alice", "Ann", "2026-12-04T10:00:00.000000Z", False, "", **more)


def bead(ref: str = "bd-1", holder: ClaimView | None = None, **more: Any) -> BeadView:
    # `repo` and `claim` in the record's own fields: the columns win, in the record's place
    extra = {"created_at": "2026-12-04", "repo": "from the file", "x-unknown": {"a": [1, 2]}}
    deps = [DepView({"created_by": "bob", "type": "old"}, ref, "other:bd-2", "blocks")]
    return BeadView(1, ref, "A title", "", "open", 2, "task", "", ["x"], extra, deps, "github.com/acme/shop",
                    holder, **more)


def member(**more: Any) -> WorkspaceView:
    return WorkspaceView(1, "alice", "developer", "Ann", "github.com/acme/shop", "h", "/src", "main", True,
                         "online", "2026", [claim(bead="bd-1", repo="r", title="t", epic=None, git=None)],
                         **more)


def message(**more: Any) -> MessageView:
    return MessageView(3, "mail", None, ["bob"], "s", "b", "bd-1", "normal", "2026", {"bead": "bd-1"},
                       **more)


PROJECT = ProjectView(1, "shop", "shop", None)

EXAMPLES = [
    (s.bead, bead()),
    (s.bead, bead(comments=[CommentView({"k": 1}, 7, "bob", "hi", "2026")], assignment=None)),
    (s.bead, bead(assignment={"to": "bob", "by": "ann", "reason": "urgent"})),
    (s.beads, [bead(), BeadView(2, "bd-2", "t", "d", "closed", 0, "bug", "bob", [], {}, [], "r", claim())]),
    (s.claim_list, [claim(bead="bd-1", repo="r", title="t", epic=None, git=None),
                    claim(bead="bd-1", repo="r", title="t", epic={"id": "bd-0", "title": "E"},
                          git={"branch": "b"})]),
    (s.claimed, Claimed(True, False, None, bead())),
    (s.claimed, Claimed(True, False, claim(), bead(holder=claim()))),
    (s.released, Released(True, bead())),
    (s.released, Released(True, bead(), "bob")),
    (s.closed, Closed(bead(), [bead("bd-3")], [{"sha": "abc", "subject": "s", "branch": "b", "at": "t"}])),
    (s.deps, Deps("bd-1", [Brief("bd-2", "open", "T", "r")], [Brief("x", "unknown", None)], [], None, [])),
    (s.explain, Explained("bd-1", "r", False, ["blocked by bd-2"])),
    (s.wait_ready, ReadyWait(False, None)),
    (s.wait_ready, ReadyWait(False, None, ["closed"])),
    (s.wait_ready, ReadyWait(True, bead())),
    (h.handoff, HandoffView(1, "alice", None, "notes", "2026")),
    (h.latest, {"handoff": None}),
    (h.prime, Primed(HandoffView(1, "a", "b", "n", "t"), None, [bead(assignment=None)], {"alias": "a"},
                     {"role": None}, [bead()], [], {"unread": 0}, [{"alias": "b"}])),
    (k.rotated, Rotated("shop", "bw_pk_x", "2026")),
    (k.revoked, Revoked("bob", True, False, ["bd-1"], 2)),
    (k.role_set, RoleSet("bob", "coordinator", "developer")),
    (st.pause_state, PauseState("bob", None)),
    (st.pause_state, PauseState("bob", Pause("maria", "", None))),
    (pr.settings, Settings("all", 30)),
    (jk.join_key_made, JoinKeyMade("shop", "bw_jk_x", "2026", "wire init --project shop --join-key bw_jk_x")),
    (i.me, member(idle_with_claim=True, idle_since="2026", idle_minutes=3, project=ProjectRef(1, "shop"))),
    (i.team, [member(idle_with_claim=False), member()]),
    (i.status, StatusView(PROJECT, member(), [member(), member(idle_with_claim=False)])),
    (i.init, InitView(PROJECT, member(), "bw_ws_x", "bw_pk_x", created=True, rebuild=True)),
    (i.init, InitView(PROJECT, member(), "bw_ws_x")),
    (i.health, Health("degraded", "ok", "unavailable")),
    (m.messages, [message(), message(acked=False), MessageView.from_dict(message().as_dict())]),
    (m.sent, Sent(message(), ["bob", "carol"])),
    (m.acked, Acked(3, True)),
    (m.subscribed, Subscribed("bd-1", False)),
    (ch.posted, ChatPosted(message(), "0-0")),
    (ch.replies, ChatMessages([message()], "1-0")),
    (ch.done, ChatDone(False, {"with": "bob"})),
    (ch.pending, ChatPending([Conversation({"with": "bob"}, 2, message()), Conversation({"with": "x"})],
                             [Waiter("bob", 12)])),
    (w.watch, {"items": [{"id": 1, "kind": "mail", "from": "a", "entry": "1-0", "bead": "bd-1"}],
               "waiting": [{"alias": "bob", "seconds": 3}]}),
    (w.watch, {"items": [], "waiting": [], "cursor": "1-0",
               "ready": [{"id": "bd-1", "repo": "r", "title": "t", "priority": 2, "role": None,
                          "why": "created"}]}),
]


@pytest.mark.parametrize(("schema", "obj"), EXAMPLES)
def test_the_compiled_dump_sends_what_marshmallow_would(schema: Open, obj: Any) -> None:
    assert json.dumps(schema.dump(obj)) == json.dumps(schema.marshmallow_dump(obj))


def test_a_record_keeps_its_unknown_fields_after_its_columns_and_the_columns_win() -> None:
    out = s.bead.dump(bead())
    assert list(out)[:11] == ["id", "title", "description", "status", "priority", "issue_type", "assignee",
                              "labels", "created_at", "repo", "x-unknown"]
    assert out["repo"] == "github.com/acme/shop" and "comments" not in out and "assignment" not in out
    assert out["dependencies"] == [{"created_by": "bob", "type": "blocks", "issue_id": "bd-1",
                                    "depends_on_id": "other:bd-2"}]


def test_every_answer_schema_compiles() -> None:
    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    for cls in subclasses(Open):
        compile_dump(cls())
