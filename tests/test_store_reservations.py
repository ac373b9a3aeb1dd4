"""Reservation patterns: normalising, overlap of paths and globs (both ways), and the expiry sweep."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from store import outbox, reservations
from store.errors import InvalidInput
from store.models import Workspace
from store.reservations import escape, normalise, overlaps
from tests.clock import FakeClock

pytestmark = pytest.mark.atomic  # also on a real Redis server: the expiry sweep's script

#: (a, b, overlap?) as a user types them; each is checked both ways after `normalise`.
OVERLAPS = [
    # literal paths and directory prefixes
    ("src/a.py", "src/a.py", True),
    ("src/a.py", "src/b.py", False),
    ("src/", "src/a.py", True),
    ("src/", "src/deep/er/a.py", True),
    ("src/", "srcx/a.py", False),
    ("src", "src/a.py", False),  # no trailing slash: the path itself only
    ("src/a", "src/ab.py", False),
    ("./src//a.py", "src/a.py", True),
    # **
    ("src/components/**", "src/components/Button.tsx", True),
    ("src/components/**", "src/components/ui/deep/x.tsx", True),
    ("src/components/**", "src/other.ts", False),
    ("src/components/**", "src/**", True),
    ("src/components/", "src/**/*.tsx", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/x/y/c", False),
    ("a/**/b/**", "**/c", True),
    ("src/**/test_*.py", "src/*/test_a.py", True),
    ("src/**/*.py", "src/a/b.py", True),
    ("docs/*.md", "src/**", False),
    ("**", "anything/at/all", True),
    # * does not cross /; a glob without / matches at any depth
    ("*.sql", "db/schema.sql", True),
    ("*.sql", "schema.sql", True),
    ("*.sql", "schema.py", False),
    ("*.py", "*.sql", False),
    ("*.sql", "db/*.sql", True),
    ("src/*.py", "src/a/b.py", False),
    ("a/*/b", "a/b", False),
    ("src/a*", "src/*b", True),
    ("src/a*c", "src/*b", False),
    ("x/a*", "x/b*", False),
    ("x/*a*", "x/*b*", True),
    # ?
    ("src/?.py", "src/a.py", True),
    ("src/?.py", "src/ab.py", False),
    ("src/??.py", "src/*.py", True),
    ("src/???.py", "src/??", False),
    # character classes
    ("src/[ab].py", "src/a.py", True),
    ("src/[ab].py", "src/c.py", False),
    ("x/[a-c]*", "x/[d-f]*", False),
    ("x/[a-c]*", "x/[c-f]*", True),
    ("x/[!a]x", "x/ax", False),
    ("x/[!a]x", "x/bx", True),
    ("x/[^a]x", "x/ax", False),
    ("x/[a-c]x", "x/[!abc]x", False),
    ("x/[a-c]x", "x/[!ab]x", True),
    ("x/[!a]", "x/[!b]", True),
    ("x/[!ab][!ab]", "x/[ab]*", False),
    ("x/[z-a]", "x/*", False),  # a reversed range matches nothing
    ("x/[]]", "x/]", True),
    ("x/[", "x/[", True),  # an unclosed [ is a literal
]


@pytest.mark.parametrize("a, b, expected", OVERLAPS, ids=[f"{a}~{b}" for a, b, _ in OVERLAPS])
def test_overlap_is_decided_both_ways(a, b, expected):
    na, nb = normalise(a), normalise(b)
    assert overlaps(na, nb) is expected
    assert overlaps(nb, na) is expected


@pytest.mark.parametrize("typed, stored", [
    ("src/a.py", "src/a.py"), ("./src//a.py", "src/a.py"), ("/src/a.py", "src/a.py"), ("src/", "src/**"),
    ("*.sql", "**/*.sql"), ("README.md", "README.md"), ("[R]EADME", "[R]EADME"), ("a/**/**/b", "a/**/b"),
    (".", "**"), ("src/*.py", "src/*.py"),
])
def test_patterns_are_normalised_to_one_spelling(typed, stored):
    assert normalise(typed) == stored


@pytest.mark.parametrize("bad", ["", "  ", "../etc/passwd", "src/../../x", "a/" + "x" * 256])
def test_patterns_outside_the_repo_or_malformed_are_refused(bad):
    with pytest.raises(InvalidInput):
        normalise(bad)


def test_escaped_file_names_match_only_themselves():
    odd = escape("data/a[1]*.csv")
    assert odd == "data/a[[]1][*].csv"
    assert overlaps(odd, "data/a[[]1][*].csv")
    assert overlaps(odd, normalise("data/*.csv"))
    assert not overlaps(odd, "data/a1x.csv")
    assert normalise(escape("x*")) == "x[*]"  # an escaped name has one spelling: no any-depth rule


def _regex(pattern: str) -> re.Pattern[str]:
    """A reference matcher written independently of `overlaps`: the pattern as a regex over `path/`."""
    out = ""
    for segment in pattern.split("/"):
        if segment == "**":
            out += "(?:[^/]+/)*"
            continue
        i = 0
        while i < len(segment):
            c = segment[i]
            end = _class_end(segment, i) if c == "[" else -1
            if c == "*":
                out += "[^/]*"
            elif c == "?":
                out += "[^/]"
            elif c == "[" and end > 0:
                body = segment[i + 1:end]
                negated = body[:1] in ("!", "^")
                body = (body[1:] if negated else body).replace("\\", "\\\\").replace("^", "\\^")
                out += f"[^/{body}]" if negated else f"(?!/)[{body}]"
                i = end
            else:
                out += re.escape(c)
            i += 1
        out += "/"
    return re.compile(f"^{out}$")


def _class_end(segment: str, i: int) -> int:
    start = i + 1 + (segment[i + 1:i + 2] in ("!", "^"))
    return segment.find("]", start + (segment[start:start + 1] == "]"))


def test_overlap_agrees_with_brute_force_on_random_globs():
    # every path over {a, b, /} up to 7 characters; patterns of one token per segment, so any
    # overlap has a witness that short: `overlaps` must be sound and complete on all of them
    paths = {"".join(t) for n in range(1, 8) for t in itertools.product("ab/", repeat=n)}
    paths = {p for p in paths if not p.startswith("/") and not p.endswith("/") and "//" not in p}
    rng, tokens = random.Random(7), ["a", "b", "*", "?", "[ab]", "[!a]", "[b-c]", "**"]
    patterns = sorted({normalise("/".join(rng.choice(tokens) for _ in range(rng.randint(1, 3))))
                       for _ in range(150)})
    matched = {p: {q for q in paths if _regex(p).match(q + "/")} for p in patterns}
    wrong = [(a, b) for a in patterns for b in patterns if overlaps(a, b) != bool(matched[a] & matched[b])]
    assert wrong == []


def test_the_expiry_sweep_emits_one_event_per_expired_reservation(app, make_agent, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("store.reservations.now", clock)  # a lease's expiry is decided by the server's clock
    ana = make_agent(project="sweep", alias="ana")
    ana.post("/locks", {"paths": ["a.py", "b/"], "ttl": 1, "reason": "short"})
    ana.post("/locks", {"paths": ["keep.py"], "ttl": 300})
    st = app.extensions["beadwire"]
    project_id = ana.info["project"]["id"]
    assert reservations.expire(st) == []  # not yet
    clock.advance(1.1)
    expired = reservations.expire(st)
    assert sorted(e["pattern"] for e in expired) == ["a.py", "b/**"]
    assert expired[0]["repo"] == "github.com/acme/shop" and expired[0]["alias"] == "ana"
    assert reservations.expire(st) == []  # each expiry is reported once
    outbox.publish_pending(st)
    events = [f for _, f in st.redis.client.xrange(st.redis.keys.events_key(project_id))]
    assert [e["kind"] for e in events].count("reservation.expired") == 2
    assert [r["pattern"] for r in ana.get("/locks").json] == ["keep.py"]


def test_the_sweep_actor_expires_reservations(app, make_agent, worker, monkeypatch):
    from actors import sweeps

    clock = FakeClock()
    monkeypatch.setattr("store.reservations.now", clock)  # a lease's expiry is decided by the server's clock
    ana = make_agent(project="actor", alias="ana")
    ana.post("/locks", {"paths": ["a.py"], "ttl": 1})
    st = app.extensions["beadwire"]
    repo_id = Workspace.get_by_id(ana.info["workspace"]["id"]).repo_id
    key = st.redis.keys.reservation_expiry_key(ana.info["project"]["id"], repo_id)
    clock.advance(1.1)
    assert ana.get("/locks").json == []
    sweeps.expire_reservations.fn()
    worker.run()
    events = st.redis.client.xrange(st.redis.keys.events_key(ana.info["project"]["id"]))
    assert any(f["kind"] == "reservation.expired" for _, f in events)
    assert st.redis.client.zcard(key) == 0
