"""Advisory file reservations: per-repo leases on paths or globs that warn, never block.

Reservations live only in Redis (ephemeral; expiry is the feature): one hash and one expiry zset per
(project, repo), written by `reserve.lua`, `autoreserve.lua`, `unreserve.lua` and `expire.lua`.
Whether two patterns overlap is decided here, in Python (`overlaps`); Lua only pre-filters.

Patterns are relative to the repo root, `/`-separated:

- `*` matches any run of characters within one path segment, `?` one character, `[abc]`, `[a-z]`,
  `[!a]` (or `[^a]`) one character of a class (as `fnmatch`); none of them crosses a `/`.
- `**` as a whole segment matches zero or more segments (`src/**`, `**/*.sql`, `a/**/b`).
- A trailing `/` names a directory and everything below it: `src/` is stored as `src/**`. A path
  without one is that path only (the CLI adds the `/` when the path is a directory on disk).
- A pattern without `/` that matches more than one name matches at any depth, as in `.gitignore`:
  `*.sql` is stored as `**/*.sql`. `..` segments are refused, `.` and empty segments dropped.

Two patterns overlap when some path matches both. `overlaps` decides that exactly for this language
(a walk of the product of the two patterns' automata, first over segments with `**`, then over the
characters of two segments with `*`). Its limits: matching is case-sensitive (two spellings of one
file on a case-insensitive disk do not overlap); there are no brace sets (`{a,b}`) and no backslash
escapes (write `[*]` for a literal `*`); a `/` inside `[...]` splits the segment; `a/**` also matches
`a` itself; and a file name containing `*`, `?` or `[` is a glob when typed as a pattern (automatic
reservations escape such names, so they stay literal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, TypeVar

from store import Store, db, outbox
from store.errors import InvalidInput
from store.lockviews import (
    ConflictView,
    HoldersView,
    HolderView,
    ReservationView,
    ReservedView,
    UnreservedView,
)
from store.models import Repo, Workspace
from store.util import iso, now

#: Lease of a reservation when no TTL is given, in seconds.
DEFAULT_TTL = 300
#: Shortest and longest lease a request may ask for, in seconds.
MIN_TTL = 1
MAX_TTL = 24 * 3600
#: Most patterns one request may reserve, release or check (and most paths auto-reserved at once).
MAX_PATTERNS = 200
#: Longest pattern, and longest segment (a file name: 255 on every common filesystem).
MAX_PATTERN = 1024
MAX_SEGMENT = 255
#: Longest reason and bead reference kept with a reservation.
MAX_REASON = 300
MAX_BEAD = 200
#: Reason of the reservations the CLI makes for the files a worktree has modified.
AUTO_REASON = "auto"
#: Paths never reserved automatically (an older CLI may still send them): the beads file, which
#: write-through and `wire sync` keep changing in every worktree.
NEVER_AUTO = (".beads/",)
#: Most expired entries one sweep takes from one repo (the next sweep takes the rest).
DEFAULT_EXPIRE_BATCH = 1000
#: What a `reservation.expired` event tells (plus the repo).
EVENT_FIELDS = ("pattern", "alias", "reason", "bead", "auto")
#: The characters that make a segment a glob.
WILDCARDS = frozenset("*?[")

# -- the pattern language ------------------------------------------------------------------------

#: A character-level token: ("=", c) one literal character, ("?",) any one character,
#: ("[", negated, ((lo, hi), ...)) a class, ("*",) any run of characters.
Token = tuple[Any, ...]
STAR: Token = ("*",)
ANY: Token = ("?",)
#: A segment is a tuple of tokens, or DSTAR (`**`: zero or more segments).
DSTAR = "**"
Segment = Any
T = TypeVar("T")


def normalise(pattern: str) -> str:
    """The canonical form of a pattern, as the server stores and compares it.

    Raises:
        InvalidInput: empty, leaves the repo (`..`), or a segment longer than a file name can be.
    """
    text = pattern.strip()
    if not text:
        raise InvalidInput("a path or glob is empty")
    parts: list[str] = []
    for segment in (text + DSTAR if text.endswith("/") else text).split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            raise InvalidInput(f"{pattern!r} leaves the repository: give paths relative to its root")
        if len(segment) > MAX_SEGMENT:
            raise InvalidInput(f"{pattern!r} has a segment longer than {MAX_SEGMENT} characters")
        if segment == DSTAR and parts and parts[-1] == DSTAR:
            continue
        parts.append(segment)
    if not parts:
        return DSTAR  # `.` or `/`: the whole repo
    if len(parts) == 1 and parts[0] != DSTAR and not _is_fixed(_parse_segment(parts[0])):
        parts.insert(0, DSTAR)  # `*.sql` matches at any depth, like .gitignore
    return "/".join(parts)


def escape(path: str) -> str:
    """A pattern that matches exactly `path` (its wildcard characters put in classes: `a[*]b`)."""
    return "".join(f"[{c}]" if c in WILDCARDS else c for c in path)


def overlaps(a: str, b: str) -> bool:
    """Whether some path matches both patterns (symmetric; both already `normalise`d)."""
    return _overlaps(a, b) if a <= b else _overlaps(b, a)


@lru_cache(maxsize=65536)
def _overlaps(a: str, b: str) -> bool:
    if a == b:
        return True
    return _meet(_segments(a), _segments(b), DSTAR, _segments_meet, _segment_possible)


@lru_cache(maxsize=8192)
def _segments(pattern: str) -> tuple[Segment, ...]:
    return tuple(DSTAR if s == DSTAR else _parse_segment(s) for s in pattern.split("/") if s)


@lru_cache(maxsize=8192)
def _parse_segment(segment: str) -> tuple[Token, ...]:
    """The tokens of one segment (runs of `*` become one; an unclosed `[` is a literal)."""
    tokens: list[Token] = []
    i = 0
    while i < len(segment):
        c = segment[i]
        klass = _parse_class(segment, i) if c == "[" else None
        if klass is not None:
            token, i = klass
            tokens.append(token)
            continue
        if c == "*":
            if not tokens or tokens[-1] != STAR:
                tokens.append(STAR)
        else:
            tokens.append(ANY if c == "?" else ("=", c))
        i += 1
    return tuple(tokens)


def _parse_class(text: str, start: int) -> tuple[Token, int] | None:
    """`[...]` at `text[start]` as fnmatch reads it: (token, index after it), or None if unclosed."""
    i = start + 1
    negated = i < len(text) and text[i] in "!^"
    i += negated
    body_start = i
    if i < len(text) and text[i] == "]":
        i += 1  # a `]` first in the class is a member
    end = text.find("]", i)
    if end < 0:
        return None
    body, ranges, k = text[body_start:end], [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            if body[k] <= body[k + 2]:  # a reversed range matches nothing, as in fnmatch
                ranges.append((body[k], body[k + 2]))
            k += 3
        else:
            ranges.append((body[k], body[k]))
            k += 1
    return ("[", negated, tuple(ranges)), end + 1


def _is_fixed(tokens: Segment) -> bool:
    """Whether a segment matches exactly one name (literals and one-character classes only)."""
    return tokens != DSTAR and all(
        t[0] == "=" or (t[0] == "[" and not t[1] and len(t[2]) == 1 and t[2][0][0] == t[2][0][1])
        for t in tokens)


def _meet(a: Sequence[T], b: Sequence[T], star: T, meet: Callable[[T, T], bool],
          possible: Callable[[T], bool]) -> bool:
    """Whether two patterns, as sequences of items where `star` stands for any run of items, can
    match one common sequence: a walk of the product of their automata, filled from the ends.

    Used twice: over segments (`star` is `**`) and over the characters of a segment (`*`).
    """
    la, lb = len(a), len(b)
    ok = [[False] * (lb + 2) for _ in range(la + 2)]  # ok[i][j]: a[i:] and b[j:] can meet
    ok[la][lb] = True
    for i in range(la, -1, -1):
        for j in range(lb, -1, -1):
            if i == la and j == lb:
                continue
            x, y = (a[i] if i < la else None), (b[j] if j < lb else None)
            if x == star:  # skip the star, or let it take one item of the other side
                ok[i][j] = ok[i + 1][j] or (y is not None and possible(y) and ok[i][j + 1])
            elif y == star:
                ok[i][j] = ok[i][j + 1] or (x is not None and possible(x) and ok[i + 1][j])
            elif x is not None and y is not None:
                ok[i][j] = ok[i + 1][j + 1] and meet(x, y)
    return ok[0][0]


def _segments_meet(a: Segment, b: Segment) -> bool:
    if all(t[0] == "=" for t in a) and all(t[0] == "=" for t in b):
        return bool(a == b)
    return _meet(a, b, STAR, _chars_meet, _char_possible)


def _segment_possible(segment: Segment) -> bool:
    return segment == DSTAR or all(_char_possible(t) for t in segment)


def _char_possible(token: Token) -> bool:
    """Whether some character matches the token (a class of reversed ranges matches none)."""
    return token[0] != "[" or token[1] or bool(token[2])


def _chars_meet(a: Token, b: Token) -> bool:
    """Whether one character matches both tokens (the alphabet is Unicode: never exhausted)."""
    if a[0] == "=":
        return _accepts(b, a[1])
    if b[0] == "=":
        return _accepts(a, b[1])
    if a == ANY or b == ANY:
        return _char_possible(b if a == ANY else a)
    if a[1] and b[1]:
        return True  # two negated classes leave infinitely many characters
    if a[1] or b[1]:
        positive, negated = (b, a) if a[1] else (a, b)
        return any(_uncovered(lo, hi, negated[2]) for lo, hi in positive[2])
    return any(alo <= bhi and blo <= ahi for alo, ahi in a[2] for blo, bhi in b[2])


def _accepts(token: Token, c: str) -> bool:
    if token[0] == "=":
        return bool(token[1] == c)
    if token[0] == "[":
        return any(lo <= c <= hi for lo, hi in token[2]) != token[1]
    return True


def _uncovered(lo: str, hi: str, holes: Iterable[tuple[str, str]]) -> bool:
    """Whether some character in `lo..hi` lies outside every range of `holes`."""
    c = ord(lo)
    for h_lo, h_hi in sorted((ord(x), ord(y)) for x, y in holes):
        if h_lo > c:
            break
        c = max(c, h_hi + 1)
    return c <= ord(hi)


# -- reservations ------------------------------------------------------------------------------

def reserve(st: Store, ws: Workspace, patterns: Sequence[str], ttl: int = DEFAULT_TTL,
            bead: str | None = None, reason: str = "") -> ReservedView:
    """Reserve (or renew) paths or globs for `ttl` seconds; advisory: always granted.

    Returns what was granted and the conflicts, naming the other workspaces whose live reservations
    overlap.

    Raises:
        InvalidInput: a pattern is malformed, or the TTL is out of range.
        Unavailable: Redis cannot be reached.
    """
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidInput(f"ttl must be {MIN_TTL}..{MAX_TTL} seconds")
    clock, wanted = now(), _normalised(patterns)
    entries = [_entry(ws, p, reason, bead, False, clock + ttl) for p in wanted]
    done = st.redis.reserve(ws.project_id, ws.repo_id, ws.id, entries, clock)
    _tell(st, ws, "reservation.created",
          {"patterns": wanted, "ttl": ttl, "bead": bead, "reason": reason[:MAX_REASON]})
    return ReservedView([view(e, clock, ws.id) for e in done.granted], conflicts(wanted, done.others, clock))


def auto_reserve(st: Store, ws: Workspace, paths: Sequence[str],
                 complete: bool = True) -> list[ConflictView]:
    """Make the caller's automatic reservations match the files it has modified; the conflicts.

    Reserves (or renews) each path with reason `auto`, keeps explicit reservations of the same path
    as they are, and, when `complete`, releases automatic ones of paths no longer listed (a capped
    list is not complete: then nothing is released). Paths that cannot be patterns are skipped.

    Raises:
        Unavailable: Redis cannot be reached.
    """
    clock = now()
    shown: dict[str, str] = {}
    for path in paths[:MAX_PATTERNS]:
        if path.startswith(NEVER_AUTO):
            continue  # `wire` writes the beads file after every bead change: nobody's work in progress
        try:
            shown.setdefault(escape(_literal(path)), path)
        except InvalidInput:
            continue  # a header is no place to fail the whole request over one odd path
    entries = [_entry(ws, p, AUTO_REASON, None, True, clock + DEFAULT_TTL) for p in shown]
    done = st.redis.auto_reserve(ws.project_id, ws.repo_id, ws.id, entries, clock, complete)
    if done.added:
        _tell(st, ws, "reservation.created",
              {"patterns": done.added, "ttl": DEFAULT_TTL, "bead": None, "reason": AUTO_REASON, "auto": True})
    if done.released:
        _tell(st, ws, "reservation.released", {"patterns": done.released, "auto": True})
    found = conflicts(list(shown), done.others, clock)
    return [replace(c, path=shown[c.path]) for c in found]


def release(st: Store, ws: Workspace, patterns: Sequence[str] | None) -> UnreservedView:
    """Release the caller's reservations of `patterns` (as given to `reserve`), or all when None.

    Raises:
        InvalidInput: a pattern is malformed.
        Unavailable: Redis cannot be reached.
    """
    clock = now()
    wanted = None if patterns is None else _normalised(patterns)
    gone = [e for e in st.redis.unreserve(ws.project_id, ws.repo_id, ws.id, wanted) if e["expires"] > clock]
    released = {e["pattern"] for e in gone}
    if released:
        _tell(st, ws, "reservation.released", {"patterns": sorted(released)})
    return UnreservedView([view(e, clock, ws.id) for e in _sorted(gone)],
                          [p for p in wanted or [] if p not in released])


def held(st: Store, ws: Workspace, mine: bool = False) -> list[ReservationView]:
    """Live reservations in the caller's repo (only the caller's with `mine`), by pattern.

    Raises:
        Unavailable: Redis cannot be reached.
    """
    clock = now()
    entries = st.redis.reservations(ws.project_id, ws.repo_id, clock)
    return [view(e, clock, ws.id) for e in _sorted(entries) if not mine or e["ws"] == ws.id]


def check(st: Store, ws: Workspace, patterns: Sequence[str]) -> HoldersView:
    """Who holds what overlaps `patterns` in the caller's repo (the caller too, as `mine`); read-only.

    Raises:
        InvalidInput: a pattern is malformed.
        Unavailable: Redis cannot be reached.
    """
    clock, wanted = now(), _normalised(patterns)
    entries = st.redis.reservations(ws.project_id, ws.repo_id, clock)
    return HoldersView([HolderView(*_fields(path, entry, clock), mine=entry["ws"] == ws.id)
                        for path, entry in _overlapping(wanted, entries, clock)])


def expire(st: Store) -> list[dict[str, Any]]:
    """Sweep: drop the reservations past their lease in every repo; emit `reservation.expired` for each.

    Reads hide an expired entry at once; this removes it and tells the project's event stream.
    Returns the expired entries (with `repo`).

    Raises:
        Unavailable: Redis cannot be reached.
    """
    clock, expired = now(), []
    repos = list(Repo.select(Repo.id, Repo.project, Repo.canonical).tuples())  # read before writing (outbox)
    for repo_id, project_id, canonical in repos:
        for entry in st.redis.expire_reservations(project_id, repo_id, clock, DEFAULT_EXPIRE_BATCH):
            event = {"repo": canonical, **{k: entry.get(k) for k in EVENT_FIELDS}}
            with db.transaction() as uow:  # the event and its outbox row commit together
                outbox.record(uow, project_id, "reservation.expired", event, workspace_id=entry.get("ws"),
                              audit=False)
            expired.append(event)
    return expired


def _tell(st: Store, ws: Workspace, kind: str, data: dict[str, Any]) -> None:
    """A reservation change on the project event stream (the dashboards' activity feed). Automatic
    reservations are announced when they change only, not on the renewal nearly every CLI call makes."""
    st.redis.add_event(ws.project_id, kind,
                       {"alias": ws.alias, "workspace": ws.id, "repo_id": ws.repo_id, **data})


# -- views -------------------------------------------------------------------------------------

def view(entry: dict[str, Any], clock: float, me: int) -> ReservationView:
    """A Reservation of the API."""
    return ReservationView(entry["pattern"], entry["alias"], entry.get("reason") or "", entry.get("bead"),
                           bool(entry.get("auto")), iso(entry["expires"]), _left(entry, clock),
                           entry["ws"] == me)


def conflicts(mine: Sequence[str], others: Iterable[dict[str, Any]], clock: float) -> list[ConflictView]:
    """A Conflict for each pair of one of `mine` and a live entry of `others` that overlap."""
    return [ConflictView(*_fields(path, entry, clock)) for path, entry in _overlapping(mine, others, clock)]


def _overlapping(mine: Sequence[str], others: Iterable[dict[str, Any]],
                 clock: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """(one of `mine`, a live entry of `others`) for each pair that overlap, by path, alias, pattern."""
    found = [(pattern, entry) for entry in _sorted(others) if entry["expires"] > clock
             for pattern in mine if overlaps(pattern, entry["pattern"])]
    return iter(sorted(found, key=lambda pair: (pair[0], pair[1]["alias"], pair[1]["pattern"])))


def _fields(path: str, entry: dict[str, Any],
            clock: float) -> tuple[str, str, str, str, str | None, bool, int]:
    """A Conflict's fields, in order."""
    return (path, entry["pattern"], entry["alias"], entry.get("reason") or "", entry.get("bead"),
            bool(entry.get("auto")), _left(entry, clock))


def _entry(ws: Workspace, pattern: str, reason: str, bead: str | None, auto: bool,
           expires: float) -> dict[str, Any]:
    """What Redis keeps for one reservation (`ws` and `pattern` also make up its hash field)."""
    return {"ws": ws.id, "alias": ws.alias, "pattern": pattern, "reason": reason[:MAX_REASON],
            "bead": bead[:MAX_BEAD] if bead else None, "auto": auto, "expires": expires}


def _normalised(patterns: Iterable[str]) -> list[str]:
    """Each pattern normalised, duplicates dropped, order kept.  Raises: InvalidInput."""
    out = list(dict.fromkeys(normalise(p) for p in patterns))
    if len(out) > MAX_PATTERNS:
        raise InvalidInput(f"at most {MAX_PATTERNS} paths at once")
    return out


def _literal(path: str) -> str:
    """A path as git prints it, cleaned of `./` and doubled slashes.  Raises: InvalidInput."""
    parts = [s for s in path.split("/") if s not in ("", ".")]
    if not parts or ".." in parts or len(path) > MAX_PATTERN or any(len(s) > MAX_SEGMENT for s in parts):
        raise InvalidInput(f"not a path in the repository: {path!r}")
    return "/".join(parts)


def _left(entry: dict[str, Any], clock: float) -> int:
    return max(0, int(entry["expires"] - clock + 0.999))


def _sorted(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: (e["pattern"], e["alias"]))
