"""The git state a claim holder reports with presence (header `X-Wire-Git`, see web/gitstate.py).

Only a worktree that holds claims pays for it: the beads it claimed, and when, are kept locally in
`.wire/claims.json` (written by `claim`, dropped by `release`/`close`), so no call asks the server.
Then a handful of git processes give the branch, head, ahead/behind against the default branch
(origin/HEAD, else main, else master), and the commits since each claim whose messages name its bead.

The same file keeps when this worktree last ran a command and when its files last changed (a hash of
`git status` plus the newest mtime of the changed files): the header's `idle` is the seconds since
either, which the server turns into "idle with claim" (a long poll such as `wire watch` is no command).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from cli.local import NOT_WORK, WIRE_DIR, read_branch, write_private_json

#: Inside `.wire/`: {"claims": {bead: claimed at}, "command": ts, "work": {"fp": hash, "changed": ts}}.
CLAIMS_FILE = "claims.json"
GIT_HEADER = "X-Wire-Git"
#: What the server takes (web/gitstate.py): at most 20 commits, 4,096 bytes.
MAX_COMMITS, MAX_HEADER, MAX_SUBJECT = 20, 4096, 72
#: Default branches, most preferred first (full ref names).
BASES = ("refs/remotes/origin/HEAD", "refs/heads/main", "refs/heads/master")
#: The most changed files whose mtimes are looked at (a huge change is activity enough).
MAX_STAT = 200


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
    raw = read(root).get("claims")
    if not isinstance(raw, dict):
        return {}
    return {k: float(v) for k, v in raw.items() if isinstance(v, (int, float))}


# -- git --------------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=root, capture_output=True,
                              text=True, errors="replace", check=False, env=_no_locks())
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _no_locks() -> dict[str, str]:
    return {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}


def default_branch(root: Path) -> str | None:
    """The full ref of origin/HEAD, main or master, whichever exists first (one git process)."""
    out = _git(root, "for-each-ref", "--format=%(refname)", *BASES) or ""
    found = set(out.split())
    return next((ref for ref in BASES if ref in found), None)


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")


def ahead_behind(root: Path, base: str) -> tuple[int, int]:
    out = (_git(root, "rev-list", "--left-right", "--count", f"{base}...HEAD") or "").split()
    return (int(out[1]), int(out[0])) if len(out) == 2 else (0, 0)


def names(message: str, ref: str) -> bool:
    """Whether a commit message names bead `ref` (`bd-12` names neither `bd-123` nor `xbd-12`)."""
    return re.search(rf"(?<![\w-]){re.escape(ref)}(?![\w-]|\.\w)", message, re.IGNORECASE) is not None


def commits(root: Path, held: dict[str, float]) -> list[dict[str, Any]]:
    """The commits on HEAD since each claim whose messages name its bead, newest first (at most 20)."""
    if not held:
        return []
    since = int(min(held.values()))
    out = _git(root, "log", f"--since=@{since}", "-n", "500", "--format=%h%x1f%ct%x1f%s%x1f%B%x1e", "HEAD")
    found: list[dict[str, Any]] = []
    for record in (out or "").split("\x1e"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) != 4:
            continue
        sha, ct, subject, body = parts
        for ref, claimed in held.items():
            if int(ct) >= int(claimed) and names(body, ref):
                found.append({"sha": sha, "bead": ref, "subject": subject[:MAX_SUBJECT], "ts": int(ct)})
                break
        if len(found) >= MAX_COMMITS:
            break
    return found


def fingerprint(root: Path) -> str | None:
    """A hash of what `git status` shows plus the newest mtime of those files: it moves when a file
    of the worktree changes."""
    out = _git(root, "status", "--porcelain", "-z", "--untracked-files=normal", "--ignore-submodules=dirty")
    if out is None:
        return None
    # what `wire` itself writes (its state, the beads file) is no one's work
    skipped = (f"{WIRE_DIR}/", *NOT_WORK)
    entries = [e for e in out.split("\x00") if len(e) > 3 and not e[3:].startswith(skipped)]
    newest = 0.0
    for entry in entries[:MAX_STAT]:
        try:
            newest = max(newest, (root / entry[3:]).stat().st_mtime)
        except OSError:
            continue
    import hashlib  # noqa: PLC0415 - start-up time: loading OpenSSL costs ms

    return hashlib.sha256(f"{entries}\x00{newest}".encode("utf-8", "replace")).hexdigest()[:16]


# -- the header -------------------------------------------------------------------------------

def state(root: Path, held: dict[str, float]) -> dict[str, Any]:
    """Branch, head, base, ahead/behind and the commits naming the held beads."""
    head = (_git(root, "rev-parse", "--verify", "-q", "HEAD") or "").strip()
    out: dict[str, Any] = {"branch": read_branch(root) or "", "head": head[:12]}
    if not head:
        return out  # no commit yet
    base = default_branch(root)
    if base:
        out["base"] = _short(base)
        out["ahead"], out["behind"] = ahead_behind(root, base)
    out["commits"] = commits(root, held)
    return out


def idle_seconds(root: Path, command: bool, ts: float | None = None) -> int:
    """Seconds since this worktree last ran a command or changed a file; 0 for a command, which is
    recorded (a long poll, `command` False, leaves the record alone)."""
    ts = time.time() if ts is None else ts
    data, dirty = read(root), False
    fp = fingerprint(root)
    work: dict[str, Any] = data["work"] if isinstance(data.get("work"), dict) else {}
    if fp is not None and work.get("fp") != fp:
        # the first look is no change: the claim (a command) is what started the clock
        data["work"], dirty = {"fp": fp, "changed": ts if work else 0}, True
    if command:
        data["command"], dirty = ts, True
    if dirty:
        write(root, data)
    last = max(float(data.get("command") or ts), float((data.get("work") or {}).get("changed") or 0))
    return max(0, int(ts - last))


def header(root: Path, command: bool) -> str | None:
    """The `X-Wire-Git` value for this worktree, or None when it holds no claims."""
    held = claims(root)
    if not held:
        return None
    body = {**state(root, held), "idle": idle_seconds(root, command)}
    value = json.dumps(body, separators=(",", ":"))  # ASCII: non-ASCII subjects are \u-escaped
    while len(value) > MAX_HEADER and body.get("commits"):
        body["commits"] = body["commits"][:-1]
        value = json.dumps(body, separators=(",", ":"))
    return value if len(value) <= MAX_HEADER else None
