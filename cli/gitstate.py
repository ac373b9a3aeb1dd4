"""The git state a claim holder reports with presence (header `X-Wire-Git`, see web/gitstate.py).

Only a worktree that holds claims pays for it: the beads it claimed, and when, are kept locally in
`.wire/claims.json` (written by `claim`, dropped by `release`/`close`), so no call asks the server.
Then git gives the branch, head, ahead/behind against the default branch (origin/HEAD, else main,
else master), and the commits since each claim whose messages name its bead.

Agents run a command every few seconds, so this stays cheap: the head and the default branch are
read from the ref files (one `git show-ref` where they cannot be: reftable, GIT_DIR), and
ahead/behind and the commits, which only depend on those commits and the claims, are kept in the
same file and worked out again (`git rev-list`, `git log`) only when one of them moved. The command's
one `git status` (cli/local.py `git_status`, shared with auto-reserve) tells whether files changed.

The same file keeps when this worktree last ran a command and when its files last changed (a hash of
`git status` plus the newest mtime of the changed files): the header's `idle` is the seconds since
either, which the server turns into "idle with claim" (a long poll such as `wire watch` is no command).
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli import gitrun
from cli.local import NOT_WORK, WIRE_DIR, git_dirs, git_status, read_branch, write_private_json

#: Inside `.wire/`: {"claims": {bead: claimed at}, "command": ts, "work": {"fp": hash, "changed": ts},
#: "counts": {"of": [head, base], "ahead": n, "behind": n}, "commits": {"of": [head, claims], "list": [...]}}.
CLAIMS_FILE = "claims.json"
GIT_HEADER = "X-Wire-Git"
#: What the server takes (web/gitstate.py): at most 20 commits, 4,096 bytes.
MAX_COMMITS, MAX_HEADER, MAX_SUBJECT = 20, 4096, 72
#: Default branches, most preferred first (full ref names).
BASES = ("refs/remotes/origin/HEAD", "refs/heads/main", "refs/heads/master")
#: The most changed files whose mtimes are looked at (a huge change is activity enough).
MAX_STAT = 200
#: A commit id as git writes it in ref files (SHA-1 or SHA-256); compiled by `re` on first use.
OBJECT_ID = r"[0-9a-f]{40}|[0-9a-f]{64}"
#: Most symbolic refs followed from one name (git's own limit is 5).
MAX_SYMREF_DEPTH = 5
#: Runs `git status` for the fingerprint: the caller's (shared with auto-reserve), or a fresh one.
Status = Callable[[], bytes | None]


# -- .wire/claims.json ------------------------------------------------------------------------

def _path(root: Path) -> Path:
    return root / WIRE_DIR / CLAIMS_FILE


def read(root: Path) -> dict[str, Any]:
    """The local claims file ({} when absent or damaged: a damaged file only costs the header)."""
    try:
        data = json.loads(_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write(root: Path, data: dict[str, Any]) -> None:
    try:
        write_private_json(_path(root), data)
    except OSError:
        pass  # presence detail only: the command itself succeeded


def record_claim(root: Path, ref: str, ts: float | None = None) -> None:
    """Remember that this worktree claimed `ref` now (its commits from now on name it)."""
    data = read(root)
    claims = data.setdefault("claims", {})
    ts = time.time() if ts is None else ts
    claims.setdefault(ref, ts)  # claiming again keeps the first time
    data["command"] = ts  # claiming is a command: the idle clock starts here
    write(root, data)


def drop_claim(root: Path, ref: str) -> None:
    data = read(root)
    if (data.get("claims") or {}).pop(ref, None) is not None:
        write(root, data)


def claims(root: Path) -> dict[str, float]:
    return _claims_in(read(root))


def _claims_in(data: dict[str, Any]) -> dict[str, float]:
    raw = data.get("claims")
    if not isinstance(raw, dict):
        return {}
    return {k: float(v) for k, v in raw.items() if isinstance(v, (int, float))}


# -- refs, from the files where git keeps them --------------------------------------------------

def refs(root: Path) -> tuple[str, str | None, str]:
    """(HEAD's commit, "" before the first commit; the default branch's full ref, or None; its commit)."""
    found = _refs_from_files(root)
    if found is None:
        out = _git(root, "show-ref", "--head", *BASES) or ""  # exit 1 when none exists: no output
        pairs = (line.split(" ", 1) for line in out.splitlines())
        found = {name: oid for oid, name in (p for p in pairs if len(p) == 2)}
    base = next((ref for ref in BASES if found.get(ref)), None)
    return found.get("HEAD", ""), base, found[base] if base else ""


def _refs_from_files(root: Path) -> dict[str, str] | None:
    """HEAD and `BASES` -> commit id, for those that exist, read as git stores them in files; None
    when the files cannot say (no `.git` here, reftable storage, GIT_DIR set, anything unexpected)."""
    dirs = git_dirs(root)
    if dirs is None or (dirs[1] / "reftable").exists():
        return None
    own, common = dirs
    packed: list[str] = []  # read on first need: most lookups are answered by a loose ref
    found: dict[str, str] = {}
    for name in ("HEAD", *BASES):
        oid = _resolve(own if name == "HEAD" else common, common, name, packed)
        if oid is None:
            return None
        if oid:
            found[name] = oid
    return found


def _resolve(first: Path, common: Path, name: str, packed: list[str]) -> str | None:
    """The commit id `name` points to ("" when it does not exist), following symbolic refs; None when
    the files say something this reader does not expect (then git is asked)."""
    folder = first
    for _ in range(MAX_SYMREF_DEPTH):
        try:
            text = (folder / name).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            text = _packed(common, name, packed)
        except (OSError, UnicodeDecodeError):
            return None
        if not text.startswith("ref:"):
            return text if not text or re.fullmatch(OBJECT_ID, text) else None
        name, folder = text[4:].strip(), common
        if not name.startswith("refs/"):
            return None
    return None


def _packed(common: Path, name: str, packed: list[str]) -> str:
    """`name`'s commit id in `packed-refs` ("" when not there); the file is read once into `packed`."""
    if not packed:
        try:
            packed.append((common / "packed-refs").read_text(encoding="utf-8") + "\n")
        except FileNotFoundError:
            packed.append("\n")
    text = packed[0]
    at = text.find(f" {name}\n")  # `<id> <name>` lines; a name holds no space, so this is the whole name
    return "" if at < 0 else text[text.rfind("\n", 0, at) + 1:at]


# -- git --------------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> str | None:
    out = gitrun.run_git(root, "-c", "core.quotePath=false", *args)
    return None if out is None else out.decode("utf-8", "replace")


def default_branch(root: Path) -> str | None:
    """The full ref of origin/HEAD, main or master, whichever exists first."""
    return refs(root)[1]


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")


def ahead_behind(root: Path, base: str, head: str = "HEAD") -> tuple[int, int]:
    out = (_git(root, "rev-list", "--left-right", "--count", f"{base}...{head}") or "").split()
    return (int(out[1]), int(out[0])) if len(out) == 2 else (0, 0)


def names(message: str, ref: str) -> bool:
    """Whether a commit message names bead `ref` (`bd-12` names neither `bd-123` nor `xbd-12`)."""
    return re.search(rf"(?<![\w-]){re.escape(ref)}(?![\w-]|\.\w)", message, re.IGNORECASE) is not None


def commits(root: Path, held: dict[str, float], head: str = "HEAD") -> list[dict[str, Any]]:
    """The commits on `head` since each claim whose messages name its bead, newest first (at most 20)."""
    return _commits(root, held, head)[0]


def _commits(root: Path, held: dict[str, float], head: str) -> tuple[list[dict[str, Any]], int]:
    """`commits`, and the newest commit time among those looked at (0 for none)."""
    if not held:
        return [], 0
    since = int(min(held.values()))
    out = _git(root, "log", f"--since=@{since}", "-n", "500", "--format=%h%x1f%ct%x1f%s%x1f%B%x1e", head)
    found: list[dict[str, Any]] = []
    newest = 0
    for record in (out or "").split("\x1e"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) != 4:
            continue
        sha, ct, subject, body = parts
        newest = max(newest, int(ct))
        for ref, claimed in held.items():
            if int(ct) >= int(claimed) and names(body, ref):
                found.append({"sha": sha, "bead": ref, "subject": subject[:MAX_SUBJECT], "ts": int(ct)})
                break
        if len(found) >= MAX_COMMITS:
            break
    return found, newest


def fingerprint(root: Path, status: Status | None = None) -> str | None:
    """A hash of what `git status` shows plus the newest mtime of those files: it moves when a file
    of the worktree changes."""
    raw = status() if status is not None else git_status(root, untracked=True)
    if raw is None:
        return None
    # what `wire` itself writes (its state, the beads file) is no one's work
    skipped = (f"{WIRE_DIR}/", *NOT_WORK)
    out = raw.decode("utf-8", "replace")
    entries = [e for e in out.split("\x00") if len(e) > 3 and not e[3:].startswith(skipped)]
    newest = 0.0
    for entry in entries[:MAX_STAT]:
        try:
            newest = max(newest, (root / entry[3:]).stat().st_mtime)
        except OSError:
            continue
    # two checksums, not a hash from hashlib: loading OpenSSL costs a command more than all of this
    data = f"{entries}\x00{newest}".encode("utf-8", "replace")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


# -- the header -------------------------------------------------------------------------------

def state(root: Path, held: dict[str, float], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Branch, head, base, ahead/behind and the commits naming the held beads. `data` (the claims
    file) keeps ahead/behind and the commits for the commits they were worked out for."""
    data = {} if data is None else data
    head, base, base_oid = refs(root)
    out: dict[str, Any] = {"branch": read_branch(root) or "", "head": head[:12]}
    if not head:
        return out  # no commit yet
    if base:
        out["base"] = _short(base)
        counts = _kept(data, "counts", [head, base_oid], "ahead", "behind")
        if counts is None:
            ahead, behind = ahead_behind(root, base_oid, head)
            counts = data["counts"] = {"of": [head, base_oid], "ahead": ahead, "behind": behind}
        out["ahead"], out["behind"] = counts["ahead"], counts["behind"]
    of = [head, [[ref, ts] for ref, ts in held.items()]]  # in order: a commit goes to the first bead it names
    found = _kept(data, "commits", of, "list") or _kept_for_later_claims(data, of)
    if found is None:
        listed, newest = _commits(root, held, head)
        found = {"list": listed, "newest": newest}
    data["commits"] = {**found, "of": of}
    out["commits"] = found["list"]
    return out


def _kept(data: dict[str, Any], key: str, of: list[Any], *fields: str) -> dict[str, Any] | None:
    """`data[key]` when it was worked out for `of` (a commit never changes: neither do they) and has
    its `fields` (a damaged file only costs working them out again)."""
    kept = data.get(key)
    if isinstance(kept, dict) and kept.get("of") == of and all(f in kept for f in fields):
        return kept
    return None


def _kept_for_later_claims(data: dict[str, Any], of: list[Any]) -> dict[str, Any] | None:
    """The kept commits when `of` only adds claims (a claim being made) to those they were worked out
    for, each made after every commit the log showed and no earlier than the first: the log is the
    same, and no commit in it is late enough to name a new one. Else None."""
    kept = data.get("commits")
    if not isinstance(kept, dict) or not isinstance(kept.get("newest"), int) or "list" not in kept:
        return None
    before = kept.get("of")
    if not (isinstance(before, list) and len(before) == 2 and before[0] == of[0]
            and isinstance(before[1], list) and before[1]):
        return None
    pairs = before[1]
    added = of[1][len(pairs):]
    if of[1][:len(pairs)] != pairs or not added:
        return None
    since = min(ts for _, ts in pairs)
    return kept if all(int(ts) > kept["newest"] and ts >= since for _, ts in added) else None


def idle_seconds(root: Path, command: bool, ts: float | None = None) -> int:
    """Seconds since this worktree last ran a command or changed a file; 0 for a command, which is
    recorded (a long poll, `command` False, leaves the record alone)."""
    data = read(root)
    idle, dirty = _idle(root, data, command, ts)
    if dirty:
        write(root, data)
    return idle


def _idle(root: Path, data: dict[str, Any], command: bool, ts: float | None = None,
          status: Status | None = None) -> tuple[int, bool]:
    """`idle_seconds` on the claims file's `data`, changed in place; and whether it changed."""
    ts = time.time() if ts is None else ts
    dirty = False
    fp = fingerprint(root, status)
    work: dict[str, Any] = data["work"] if isinstance(data.get("work"), dict) else {}
    if fp is not None and work.get("fp") != fp:
        # the first look is no change: the claim (a command) is what started the clock
        data["work"], dirty = {"fp": fp, "changed": ts if work else 0}, True
    if command:
        data["command"], dirty = ts, True
    last = max(float(data.get("command") or ts), float((data.get("work") or {}).get("changed") or 0))
    return max(0, int(ts - last)), dirty


def header(root: Path, command: bool, status: Status | None = None,
           claiming: tuple[str, float] | None = None) -> str | None:
    """The `X-Wire-Git` value for this worktree, or None when it holds no claims. `status` gives the
    worktree's `git status` with untracked files (the command's own, cli/local.py `git_status`);
    `claiming` (bead, since): a claim being made, counted as held already (the claim's call says so)."""
    data = read(root)
    held = _claims_in(data)
    if claiming is not None:
        held.setdefault(*claiming)  # as `record_claim` will keep it
    if not held:
        return None
    kept = (data.get("counts"), data.get("commits"))
    body = state(root, held, data)
    body["idle"], dirty = _idle(root, data, command, status=status)
    if dirty or kept != (data.get("counts"), data.get("commits")):
        write(root, data)
    value = json.dumps(body, separators=(",", ":"))  # ASCII: non-ASCII subjects are \u-escaped
    while len(value) > MAX_HEADER and body.get("commits"):
        body["commits"] = body["commits"][:-1]
        value = json.dumps(body, separators=(",", ":"))
    return value if len(value) <= MAX_HEADER else None
