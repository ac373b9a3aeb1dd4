"""Local state of the CLI: the git worktree, `.wire/workspace.json`, the saved project keys.

Everything here runs on the agent's machine and never talks to the server. Reading the workspace
and the branch is done from files (no subprocess) because every command needs them; `git` itself
is run by `wire init`, and once per command by `git_status` (auto-reserve, and the git state of a
claim holder: cli/gitstate.py).
"""

from __future__ import annotations

import json
import os
import time

# what `socket` re-exports, without its enums of every constant built on import (start-up time)
from _socket import gethostname
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cli import gitrun
from cli.errors import WireError

#: Directory, at the worktree root, that holds this worktree's identity.
WIRE_DIR = ".wire"
#: The identity file inside `WIRE_DIR`.
WORKSPACE_FILE = "workspace.json"
#: Inside `WIRE_DIR`: the offline journal (cli/offline.py); every command looks for it.
JOURNAL_FILE = "journal.jsonl"
#: Inside `WIRE_DIR`: the newest mailbox entry this worktree's banner has shown (`X-Wire-Seen`).
SEEN_FILE = "seen"
#: Inside `WIRE_DIR`: the project event stream id the last `wire watch --ready` got to.
READY_CURSOR_FILE = "ready-cursor"
#: Project keys file inside the config directory.
KEYS_FILE = "keys.json"
#: Server URLs that answered as beadwire, inside the config directory (`Client.check_server`).
SERVERS_FILE = "servers.json"
#: Line added to the repo's `info/exclude` so the identity (it holds a token) is never committed.
EXCLUDE_LINE = ".wire/"
#: Changed paths that are not anyone's work: the beads file that write-through and `wire sync` keep
#: in step with the server (never auto-reserved, never checked by the pre-commit guard).
NOT_WORK = (".beads/",)


class Workspace:
    """The `.wire/workspace.json` of one worktree: which server, project and identity it uses."""

    __slots__ = ("data", "root")

    def __init__(self, root: Path, data: dict[str, Any]) -> None:
        self.root = root
        self.data = data

    @property
    def path(self) -> Path:
        """Where the identity file lives."""
        return self.root / WIRE_DIR / WORKSPACE_FILE

    @property
    def url(self) -> str | None:
        """Server URL the workspace was registered with."""
        return self.data.get("url")

    @property
    def token(self) -> str | None:
        """The workspace token (bearer for every call)."""
        return self.data.get("token")

    @property
    def project(self) -> str | None:
        """Project slug."""
        return self.data.get("project")

    @property
    def alias(self) -> str | None:
        """The alias other agents see."""
        return self.data.get("alias")


class GitRepo:
    """What `wire init` learns about the current worktree from git."""

    __slots__ = ("branch", "common_dir", "origin", "root")

    def __init__(self, root: Path, common_dir: Path, origin: str, branch: str | None) -> None:
        self.root = root
        self.common_dir = common_dir
        self.origin = origin
        self.branch = branch


# -- finding things by walking up ------------------------------------------------------------

def journal_path(root: Path) -> Path:
    """The offline journal of the worktree at `root` (cli/offline.py keeps it)."""
    return root / WIRE_DIR / JOURNAL_FILE


def find_workspace(start: Path | None = None) -> Workspace | None:
    """Find the workspace of the worktree containing `start` (default: cwd), or None.

    The walk stops at the first worktree root (a directory with `.git`), so a linked worktree
    nested inside another one never borrows its parent's identity.
    """
    for folder in _upwards(start):
        found = read_workspace(folder)
        if found is not None or (folder / ".git").exists():
            return found
    return None


def find_worktree_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above `start` that has a `.git` (dir or file), or None."""
    for folder in _upwards(start):
        if (folder / ".git").exists():
            return folder
    return None


def _upwards(start: Path | None) -> list[Path]:
    here = (start or Path.cwd()).absolute()
    return [here, *here.parents]


def read_workspace(root: Path) -> Workspace | None:
    """Read `<root>/.wire/workspace.json`, or None when it does not exist.

    Raises:
        WireError: the file exists but is not a JSON object.
    """
    path = root / WIRE_DIR / WORKSPACE_FILE
    if not path.is_file():
        return None
    data = _read_json(path)
    if not isinstance(data, dict):
        raise WireError(f"{path} is damaged: run `wire init` again")
    return Workspace(root, data)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WireError(f"cannot read {path}: {exc}") from exc


# -- branch and host (cheap: read on every command) -------------------------------------------

def read_branch(root: Path | None) -> str | None:
    """The checked-out branch of the worktree at `root`, read from its HEAD file (no git process).

    Returns `detached@<sha7>` for a detached HEAD and None when there is no readable HEAD.
    """
    git_dir = _git_dir(root) if root else None
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip() if git_dir else ""
    except OSError:
        return None
    if head.startswith("ref:"):
        ref = head[4:].strip()
        return ref.removeprefix("refs/heads/")
    return f"detached@{head[:7]}" if head else None


def _git_dir(root: Path) -> Path | None:
    """The git directory of a worktree; `.git` is a file (`gitdir: ...`) in linked worktrees."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        text = dot_git.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    return root / text[7:].strip()  # an absolute gitdir replaces root in the join


def git_dirs(root: Path) -> tuple[Path, Path] | None:
    """The worktree's own git directory (its HEAD) and the one its worktrees share (refs, objects), read
    from files; None when `root` has no readable `.git`, or the environment points git elsewhere."""
    if any(name in os.environ for name in ("GIT_DIR", "GIT_COMMON_DIR")):
        return None
    own = _git_dir(root)
    if own is None:
        return None
    try:
        common = (own / "commondir").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return own, own
    except OSError:
        return None
    return own, own / common  # relative to the worktree's git dir, or absolute


def presence_headers(root: Path | None) -> dict[str, str]:
    """The `X-Wire-Branch` / `X-Wire-Host` headers that refresh this workspace's presence."""
    headers = {"X-Wire-Host": _header_value(gethostname())}
    branch = read_branch(root)
    if branch:
        headers["X-Wire-Branch"] = _header_value(branch)
    return headers


def _header_value(value: str) -> str:
    """Make a value safe for an HTTP header (http.client encodes latin-1; no line breaks)."""
    value = " ".join(value.split())
    if value.isascii():
        return value
    return quote(value, safe=" /@:._-+")


# -- git (`wire init`; `git_status` on every command) -----------------------------------------

def git(*args: str, cwd: Path) -> str:
    """Run `git ARGS` in `cwd` and return its stdout, stripped.

    Raises:
        WireError: git is missing or the command failed (its message is kept).
    """
    import subprocess  # noqa: PLC0415 - start-up time: a command's own git runs go through `run_git`

    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise WireError(f"cannot run git: {exc}") from exc
    if done.returncode != 0:
        raise WireError(done.stderr.strip() or f"git {' '.join(args)} failed", code="git")
    return done.stdout.strip()


def git_repo(cwd: Path) -> GitRepo:
    """Learn the worktree root, shared git dir, origin URL and branch of `cwd`.

    Raises:
        WireError: not inside a git worktree, or the repo has no `origin` remote.
    """
    try:
        top, common = git("rev-parse", "--show-toplevel", "--git-common-dir", cwd=cwd).splitlines()
    except (WireError, ValueError) as exc:
        raise WireError("not a git worktree: run `wire init` inside a git checkout of your project",
                        code="not_a_repo") from exc
    root = Path(top)
    try:
        origin = git("remote", "get-url", "origin", cwd=root)
    except WireError as exc:
        raise WireError(f"no `origin` remote in {root}: beadwire identifies a repo by its origin URL",
                        code="no_origin", hint="add one with `git remote add origin URL`") from exc
    # --git-common-dir may be relative to the directory git ran in
    return GitRepo(root, (cwd / common).resolve(), origin, read_branch(root))


def git_user_name(root: Path) -> str | None:
    """`git config user.name`, or None when unset."""
    try:
        return git("config", "user.name", cwd=root) or None
    except WireError:
        return None


def changed_paths(root: Path) -> list[str] | None:
    """Files `git status` shows modified or added in the worktree at `root` (relative to it, sorted;
    a rename's new name; not deletions or untracked files), or None when git cannot tell.

    The beads file is left out (`NOT_WORK`): `wire` writes it after every bead change, so a worktree
    whose only change is that file counts as clean, and it is never reserved automatically.
    """
    return changed_in(git_status(root, untracked=False))


def changed_in(raw: bytes | None) -> list[str] | None:
    """`changed_paths` from the output of `git_status` (with or without untracked files: they are
    not changes), or None when git could not tell."""
    if raw is None:
        return None
    return [path for path in parse_status(raw) if not path.startswith(NOT_WORK)]


def git_status(root: Path, untracked: bool) -> bytes | None:
    """`git status --porcelain -z` of the worktree at `root`, listing untracked files or not (a
    command's one `git status`: auto-reserve and, while it holds claims, its git state share it), or
    None when git cannot tell.

    Optional locks are off (`run_git`), so it never writes the index or contends with a git command
    running at the same time (a commit running its hooks, an editor refreshing).
    """
    listed = "normal" if untracked else "no"
    return gitrun.run_git(root, "status", "--porcelain", "-z", f"--untracked-files={listed}",
                   "--ignore-submodules=dirty")


def parse_status(raw: bytes) -> list[str]:
    """The modified or added paths of `git status --porcelain -z` output (v1: `XY path`, and for a
    rename or copy `XY new` followed by the old name as its own entry)."""
    entries = raw.decode("utf-8", "replace").split("\0")
    found, i = set(), 0
    while i < len(entries):
        entry, i = entries[i], i + 1
        if len(entry) < 4:
            continue
        xy, path = entry[:2], entry[3:]
        if xy[0] in "RC":
            i += 1  # skip the source name
        if any(c in "MARCTU" for c in xy):
            found.add(path)
    return sorted(found)


def ensure_excluded(common_dir: Path, line: str = EXCLUDE_LINE) -> bool:
    """Add `line` (default `.wire/`) to the repo's `info/exclude` unless it is there (shared by all
    worktrees); return whether it was added."""
    exclude = common_dir / "info" / "exclude"
    text = exclude.read_text(encoding="utf-8") if exclude.is_file() else ""
    bare = line.rstrip("/")
    if any(have.strip() in (line, "/" + line, bare, "/" + bare) for have in text.splitlines()):
        return False
    exclude.parent.mkdir(parents=True, exist_ok=True)
    sep = "\n" if text and not text.endswith("\n") else ""
    with exclude.open("a", encoding="utf-8") as fh:
        fh.write(f"{sep}{line}\n")
    return True


def common_git_dir(root: Path) -> Path | None:
    """The git dir shared by all worktrees of the checkout at `root` (in a linked worktree it lives
    elsewhere), or None when `root` is not in a git checkout."""
    try:
        common = git("rev-parse", "--git-common-dir", cwd=root)
    except WireError:
        return None
    return (root / common).resolve()


# -- private files ---------------------------------------------------------------------------

def write_workspace(root: Path, data: dict[str, Any]) -> Path:
    """Write `<root>/.wire/workspace.json` (dir 0700, file 0600, atomically); return its path."""
    folder = root / WIRE_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    path = folder / WORKSPACE_FILE
    write_private_json(path, data)
    return path


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON readable by the owner only; readers see the old or the new file, never half."""
    import tempfile  # noqa: PLC0415 - only when a file is written (start-up time)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_seen(root: Path) -> str | None:
    """The entry id in `<root>/.wire/seen`, or None (never written, or unreadable)."""
    return _read_marker(root, SEEN_FILE)


def write_seen(root: Path, entry: str) -> None:
    """Record the newest entry shown (atomically: a reader sees the old or the new id); a failure only
    means those lines may be shown once more."""
    _write_marker(root, SEEN_FILE, entry)


def read_ready_cursor(root: Path) -> str | None:
    """Where the last `wire watch --ready` left the project event stream (`.wire/ready-cursor`), or None."""
    return _read_marker(root, READY_CURSOR_FILE)


def write_ready_cursor(root: Path, cursor: str) -> None:
    """Remember where `wire watch --ready` got to, so the next one misses nothing in between."""
    _write_marker(root, READY_CURSOR_FILE, cursor)


def _read_marker(root: Path, name: str) -> str | None:
    try:
        # bytes decoded: a text file in ASCII would load that codec's module (start-up time)
        return (root / WIRE_DIR / name).read_bytes().decode("ascii").strip() or None
    except (OSError, ValueError):
        return None


def _write_marker(root: Path, name: str, value: str) -> None:
    """One short line in `.wire/<name>`, replaced atomically; a failure is only a lost hint."""
    import tempfile  # noqa: PLC0415 - only when a file is written (start-up time)

    folder = root / WIRE_DIR
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value + "\n")
        os.replace(tmp, folder / name)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def config_dir() -> Path:
    """The user's beadwire config dir: `WIRE_CONFIG_DIR`, else the platform's (platformdirs)."""
    override = os.environ.get("WIRE_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir  # noqa: PLC0415 - only for the user's config dir (start-up time)

    return Path(user_config_dir("beadwire", appauthor=False))


def key_name(url: str, slug: str) -> str:
    """The entry name of a project key in `keys.json`."""
    return f"{url.rstrip('/')}|{slug}"


def find_key(url: str, slug: str) -> str | None:
    """The saved project key for `slug` on the server at `url`, or None."""
    path = config_dir() / KEYS_FILE
    if not path.is_file():
        return None
    keys = _read_json(path)
    return keys.get(key_name(url, slug)) if isinstance(keys, dict) else None


def save_key(url: str, slug: str, key: str) -> Path:
    """Remember a project key in `keys.json` (0600, written atomically); return the file's path.

    Raises:
        WireError: the existing keys file cannot be read (we never overwrite keys we cannot parse).
    """
    folder = config_dir()
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True)
    path = folder / KEYS_FILE
    keys = _read_json(path) if path.is_file() else {}
    if not isinstance(keys, dict):
        raise WireError(f"{path} is not a JSON object: fix or move it, then run `wire init` again")
    keys[key_name(url, slug)] = key
    write_private_json(path, keys)
    return path


def human_entry(url: str, slug: str, name: str) -> str:
    """The entry name of a person's token in `keys.json` (beside the project keys)."""
    return f"{url.rstrip('/')}|{slug}|human:{name.lower()}"


def save_human_token(url: str, slug: str, name: str, token: str) -> Path:
    """Remember a person's own token in `keys.json` under their name (as `save_key` does a key)."""
    return save_key(url, f"{slug}|human:{name.lower()}", token)


def find_human_token(url: str, name: str, slug: str | None = None) -> str | None:
    """The saved token of person `name` on the server at `url`: of project `slug` when given and
    saved, else of the only project that person has a token for there (None when none or several)."""
    path = config_dir() / KEYS_FILE
    keys = _read_json(path) if path.is_file() else {}
    if not isinstance(keys, dict):
        return None
    if slug and human_entry(url, slug, name) in keys:
        return keys[human_entry(url, slug, name)]
    prefix, suffix = f"{url.rstrip('/')}|", f"|human:{name.lower()}"
    found = [v for k, v in keys.items() if k.startswith(prefix) and k.endswith(suffix)]
    return found[0] if len(found) == 1 else None


def known_server(url: str) -> bool:
    """Whether `url` answered as a beadwire server before (an unreadable file knows none)."""
    path = config_dir() / SERVERS_FILE
    try:
        known = _read_json(path) if path.is_file() else {}
    except WireError:
        return False
    return isinstance(known, dict) and url.rstrip("/") in known


def remember_server(url: str) -> None:
    """Note that `url` answers as beadwire; a failure to write only costs another check later."""
    folder = config_dir()
    path = folder / SERVERS_FILE
    try:
        known = _read_json(path) if path.is_file() else {}
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private_json(path, {**(known if isinstance(known, dict) else {}),
                                  url.rstrip("/"): int(time.time())})
    except (WireError, OSError):
        pass
