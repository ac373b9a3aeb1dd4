"""The worktree's beads file and its base: write-through, and the file side of `wire sync`.

`.beads/issues.jsonl` is part of the repo. `.wire/beads.base.jsonl` (out of git with the rest of
`.wire/`) is the file as the last sync left it: the base of the next sync's three-way merge
(store/merge.py), so a bead missing from the file is deleted only when the base had it.
`.wire/beads.base.json` says which git state the base belongs to: after a checkout or reset that
changed the file to something not descended from it, the base no longer describes the file and is
not sent (then nothing is deleted).

Both files are only ever replaced whole (temp file, fsync, rename: `offline.write_atomic`) under the
worktree's lock (`offline.locked`), so a `wire` killed at any moment leaves the old file or the new
one, and concurrent `wire` processes of one worktree take turns. A bead's line is replaced in place,
new beads are appended: `git diff` shows the beads that changed, nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import local, offline, output
from cli.client import WireError

if TYPE_CHECKING:
    from cli.client import Client

BEADS_FILE = offline.BEADS_FILE
#: The base and what it belongs to, in `.wire/`.
BASE_FILE = "beads.base.jsonl"
BASE_META = "beads.base.json"
#: Commits of the beads file's history searched for the base (a longer-lived base is not trusted).
HISTORY_DEPTH = 500
#: Blobs of the file `wire` wrote since the last sync that the base remembers.
MAX_WRITTEN = 50


def beads_path(root: Path) -> Path:
    return root / BEADS_FILE


def read_text(path: Path) -> str:
    """The file's text, "" when it does not exist.  Raises: WireError: unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise WireError(f"cannot read {path}: {exc}", code="unreadable") from exc


# -- lines ---------------------------------------------------------------------------------------

def dump_record(record: dict[str, Any]) -> str:
    """One line of a beads file, as store/merge.py `dump_record` writes it (tests/test_cli_beadsfile.py
    holds the two equal). Not imported from there: the store package loads hashlib and dataclasses,
    which would cost the write-through of every claim more than all the rest of it."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _line_id(line: str) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None  # a broken line is kept as it is (a sync names it)
    ident = record.get("id") if isinstance(record, dict) else None
    return ident.strip() if isinstance(ident, str) else None


def apply_records(text: str, records: list[dict[str, Any]], add: bool = True) -> str:
    """`text` with each record's line replaced where its id is (the last such line; earlier copies
    dropped), or appended (`add`); every other line stays byte for byte."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    at: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        ident = _line_id(line) if line.strip() else None
        if ident is not None:
            at.setdefault(ident, []).append(i)
    dropped: set[int] = set()
    for record in records:
        ident = str(record.get("id", "")).strip()
        places = at.get(ident)
        if places:
            lines[places[-1]] = dump_record(record)
            dropped.update(places[:-1])
            at[ident] = places[-1:]
        elif add:
            at[ident] = [len(lines)]
            lines.append(dump_record(record))
    return "".join(line + "\n" for i, line in enumerate(lines) if i not in dropped)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):  # a write killed before its rename
        leftover.unlink(missing_ok=True)
    # the beads file is part of the repo: as readable as any file of it (the umask decides)
    offline.write_atomic(path, text, mode=0o666)


# -- the base ------------------------------------------------------------------------------------

def _blob(text: str) -> str:
    """The git blob id of a file with this content."""
    data = text.encode("utf-8")
    import hashlib  # noqa: PLC0415 - start-up time: OpenSSL, only where a sync left a base

    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _sha256(text: str) -> str:
    import hashlib  # noqa: PLC0415 - start-up time: OpenSSL, only where a sync left a base

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        return local.git(*args, cwd=root)
    except WireError:
        return None


def head_blob(root: Path) -> str | None:
    """The beads file's blob in HEAD, or None (not committed, no commits, not a git repo)."""
    return _git(root, "rev-parse", "-q", "--verify", f"HEAD:{BEADS_FILE.as_posix()}") or None


def _history_blobs(root: Path) -> set[str]:
    raw = _git(root, "log", "-m", "--format=", "--raw", "--no-abbrev", "-n", str(HISTORY_DEPTH), "HEAD", "--",
               BEADS_FILE.as_posix()) or ""
    return {line.split()[3] for line in raw.splitlines() if line.startswith(":") and len(line.split()) > 3}


def _read_meta(root: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((root / offline.WIRE_DIR / BASE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def load_base(root: Path) -> tuple[str | None, str]:
    """The base to send, or None with the reason it is not (empty when there is simply none yet).

    The base describes the file only while the file descends from what `wire` last wrote: untouched
    since, or edited in the worktree on top of it, or committed and built on in git. When git put
    something else there (a checkout of another branch, a reset, the committed version restored),
    beads missing from the file were not deleted by anyone: no base, so nothing is deleted.
    """
    folder = root / offline.WIRE_DIR
    meta = _read_meta(root)
    try:
        text = (folder / BASE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"the base in {offline.WIRE_DIR}/ is unreadable ({exc})"
    if meta is None or meta.get("sha256") != _sha256(text):
        return None, f"the base in {offline.WIRE_DIR}/ is damaged"
    written = set(meta.get("written") or [])
    work, head = _blob(read_text(beads_path(root))), head_blob(root)
    if work in written:
        return text, ""  # as `wire` left it
    if head == meta.get("head_blob") and work != head:
        return text, ""  # edited in the worktree since
    if head != meta.get("head_blob") and head is not None and written & (_history_blobs(root) | {head}):
        return text, ""  # committed, and git went on from there
    return None, ("git changed the file since the last sync (a checkout, reset or pull), so the base no "
                  "longer "
                  "describes it")


def save_base(root: Path, text: str, file_text: str, head: str | None,
              written: list[str] | None = None) -> None:
    """Record `text` as the base, with the beads file's blob in HEAD and the blobs `wire` has written
    since (`file_text` the latest)."""
    folder = root / offline.WIRE_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    offline.write_atomic(folder / BASE_FILE, text)
    meta = {"v": 1, "sha256": _sha256(text), "head_blob": head,
            "written": [*(written or [])[-(MAX_WRITTEN - 1):], _blob(file_text)]}
    offline.write_atomic(folder / BASE_META, json.dumps(meta) + "\n")


# -- write-through ---------------------------------------------------------------------------------

def store_records(root: Path, records: list[dict[str, Any]]) -> None:
    """Put records into the beads file, and into the base where it has those beads (the caller holds
    the worktree lock). A bead the base lacks stays out of it: never deleted by a file that lacks it."""
    path = beads_path(root)
    text = apply_records(read_text(path), records)
    _write(path, text)
    meta = _read_meta(root)
    try:
        base = (root / offline.WIRE_DIR / BASE_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # no base yet (or a damaged one, which the next sync does not trust anyway)
    if meta is None:
        return
    save_base(root, apply_records(base, records, add=False), text, meta.get("head_blob"), meta.get("written"))


def write_through(client: Client, refs: list[str], *, locked: bool = False, records: Any = None) -> None:
    """After a bead change: put the bead's record, as the server now has it, into the worktree's beads
    file and base (a bead of another repo is left alone). Never fails the command, whose change is
    made: a failure is a warning, and the next `wire sync` catches the file up. `records`: those the
    change's answer brought (a claim's, `X-Wire-Records`); without them they are asked for."""
    refs = [ref for ref in refs if ref]
    if not refs or client.workspace is None:
        return
    try:
        if not isinstance(records, list):
            records = client.file_records(refs).get("records") or []
        found = [r for r in records if isinstance(r, dict) and r.get("id")]
        if not found:
            return
        if locked:
            store_records(client.workspace.root, found)
        else:
            with offline.locked(client.workspace.root):
                store_records(client.workspace.root, found)
    except (WireError, OSError) as exc:
        output.warn(f"{BEADS_FILE} not updated ({getattr(exc, 'message', exc)}); `wire sync` will catch it "
                    "up")


# -- sync ------------------------------------------------------------------------------------------

def sync(client: Client, path: Path | None, mode: str, dry_run: bool, allow_delete: bool) -> dict[str, Any]:
    """Two-way sync of the beads file (`path`, default the worktree's): send it with its base, write
    back what the server answers. Returns the answer, plus `file` and, when the base was left out,
    `base_note`."""
    client.catch_up()  # the offline journal first: it takes the same lock
    root = client.root
    own = path is None or path.resolve() == beads_path(root).resolve()
    path = path or beads_path(root)
    with offline.locked(root):
        text = read_text(path)
        base, note = load_base(root) if own else (None, "")
        answer = client.sync(text, mode, base=base, dry_run=dry_run, allow_delete=allow_delete)
        written = apply_records(text, answer.get("records") or []) if answer.get("records") else text
        if not dry_run and written != text:
            _write(path, written)
        if not dry_run and own and (written or base is not None):
            save_base(root, written, written, head_blob(root))
    return {**answer, "file": str(path), **({"base_note": note} if note else {})}
