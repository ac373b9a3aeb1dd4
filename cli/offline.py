"""Offline work: when the server cannot be reached the worktree keeps going and catches up later.

Coordination calls (claim, release, close, reopen, comment, mail, status changes) are appended to
`.wire/journal.jsonl`, each with the request id (`Idempotency-Key`) it was first sent with; bead
creation and field edits go straight into `.beads/issues.jsonl`, with a `sync` entry in the
journal. The next command that reaches the server replays the journal in order before its own
call (`Client._replay_journal`), reporting each entry on stderr; what a replayed entry changed is
written through to the beads file like any online change (cli/beadsfile.py), so each offline edit
reaches the server, and the file, exactly once.

Durability: every append is fsynced, and after each entry is answered the journal is rewritten
without it (temp file, fsync, rename, fsync of the directory). A replay killed midway therefore
sends again at most the entry in flight, and the server answers that one from its request log
instead of applying it twice. One `flock` on `.wire/journal.lock` serialises appends, bead-file
edits (offline, write-through, `wire sync`) and replays of a worktree; a command that finds a
replay running does not wait for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import click

from cli import output
from cli.client import IDEMPOTENCY_HEADER, Journaled, ServerUnreachable, WireError, bead_path
from cli.local import JOURNAL_FILE, WIRE_DIR, journal_path

if TYPE_CHECKING:
    from cli.client import Client

LOCK_FILE = "journal.lock"
#: Entries the server refused, with its answer, kept for inspection.
REJECTED_FILE = "journal.rejected.jsonl"
BEADS_FILE = Path(".beads") / "issues.jsonl"
PRIORITY_WORDS = {"critical": 0, "high": 1, "medium": 2, "normal": 2, "low": 3, "backlog": 4}
#: Fields of `PATCH /v1/beads/<id>` that an offline edit can make in the beads file.
LOCAL_FIELDS = frozenset({"title", "priority", "description", "assignee", "add_labels", "remove_labels"})
#: Error codes that mean "not yet": the replay stops and keeps the entry for the next command.
NOT_YET = frozenset({"request_in_progress", "rate_limited"})


# -- files -------------------------------------------------------------------------------------

@contextmanager
def locked(root: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the worktree's lock (journal, beads file and its base); yields False when `wait` is off
    and someone else holds it. Not reentrant: a process holding it must not ask again."""
    folder = root / WIRE_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    try:
        import fcntl  # noqa: PLC0415 - no such module on Windows
    except ImportError:  # no flock (Windows): one agent per worktree is the norm anyway
        yield True
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing drops the lock


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_line(path: Path, line: str, mode: int = 0o600) -> None:
    """Append one line and make it durable (the directory too when the file is new)."""
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        # a line torn by a crash mid-write must not glue itself to the next one
        if not new and os.fstat(fd).st_size and not _ends_with_newline(path):
            line = "\n" + line
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _fsync_dir(path.parent)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _replace(path: Path, lines: list[str]) -> None:
    """Make `lines` the file's content atomically and durably (no lines: remove the file)."""
    if not lines:
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return
    write_atomic(path, "".join(line + "\n" for line in lines))


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Make `text` the file's content atomically and durably: a temp file beside it, fsynced, renamed
    over it, the directory fsynced. A reader (or a crash) sees the old file or the new, never half.
    An existing file keeps its permissions; a new one gets `mode` (less the umask)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, path.stat().st_mode & 0o777)  # the beads file stays as readable as it was
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.split("\n") if line.strip()]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _command_line() -> str:
    return " ".join(["wire", *sys.argv[1:]])


def _entry(kind: str, **fields: Any) -> str:
    return json.dumps({"v": 1, "kind": kind, **fields, "created_at": _now(), "command": _command_line()},
                      separators=(",", ":"))


# -- journaling ----------------------------------------------------------------------------------

def keep(client: Client, what: str, method: str, path: str, body: Any, key: str,
         failure: ServerUnreachable) -> Journaled:
    """Journal a call the server could not be reached for; returns the warning to raise (exit 5)."""
    root = client.root
    with locked(root):
        line = _entry("call", what=what, method=method, path=path, body=body, key=key)
        _append_line(journal_path(root), line)
    return Journaled(f"{failure.message}; `{what}` is saved in {WIRE_DIR}/{JOURNAL_FILE}",
                     details={"journaled": what, "request_id": key})


def _want_sync(root: Path, ref: str) -> None:
    """Journal a sync of bead `ref` from the beads file (lock held); a journal that already ends
    with a sync gets `ref` added to it instead."""
    path = journal_path(root)
    lines = _read_lines(path)
    last = _parse(lines[-1]) if lines else {}
    if last.get("kind") != "sync":
        _append_line(path, _entry("sync", what=f"sync {BEADS_FILE}", ids=[ref]))
    elif ref not in last.get("ids", [ref]):
        last["ids"] = [*last["ids"], ref]
        _replace(path, [*lines[:-1], json.dumps(last, separators=(",", ":"))])


def _parse(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


# -- bead edits in the beads file -----------------------------------------------------------------

def create_locally(client: Client, body: dict[str, Any], failure: ServerUnreachable) -> WireError:
    """Add the bead to `.beads/issues.jsonl` under a local id; returns the warning to raise (exit 5)."""
    root = client.root
    path = root / BEADS_FILE
    stamp = _now()
    with locked(root):
        lines = _read_lines(path)
        ids = {str(_parse(line).get("id")) for line in lines}
        ref = _new_id(ids)
        record = {"id": ref, "title": body["title"], "description": body.get("description") or "",
                  "status": "open", "priority": _priority(body.get("priority")),
                  "issue_type": body.get("issue_type") or "task", "labels": list(body.get("labels") or []),
                  "created_at": stamp, "updated_at": stamp,
                  "dependencies": _dependencies(ref, body, stamp)}
        alias = client.workspace.alias if client.workspace else None
        if alias:
            record["created_by"] = alias
        path.parent.mkdir(parents=True, exist_ok=True)
        # the beads file is part of the repo: readable like any file of it (the umask decides)
        _append_line(path, json.dumps(record, ensure_ascii=False, separators=(",", ":")), mode=0o666)
        _want_sync(root, ref)
    return Journaled(f"{failure.message}; created {ref} in {BEADS_FILE}, synced when the server is back",
                     details={"id": ref, "file": str(path)})


def update_locally(client: Client, ref: str, body: dict[str, Any], key: str,
                   failure: ServerUnreachable) -> WireError:
    """Edit the bead in `.beads/issues.jsonl` when it is there and only fields change; otherwise (a
    status change, a bead of the server only) journal the call. Returns the warning to raise."""
    root = client.root
    path = root / BEADS_FILE
    if set(body) - LOCAL_FIELDS:
        return keep(client, f"update {ref}", "PATCH", bead_path(ref), body, key, failure)
    with locked(root):
        lines = _read_lines(path)
        found = next((i for i, line in enumerate(lines) if _parse(line).get("id") == ref), None)
        if found is not None:
            record = _edited(_parse(lines[found]), body)
            lines[found] = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            _replace(path, lines)
            _want_sync(root, ref)
    if found is None:
        return keep(client, f"update {ref}", "PATCH", bead_path(ref), body, key, failure)
    return Journaled(f"{failure.message}; updated {ref} in {BEADS_FILE}, synced when the server is back",
                     details={"id": ref, "file": str(path)})


def _edited(record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    for name in ("title", "description", "assignee"):
        if name in body:
            record[name] = body[name]
    if "priority" in body:
        record["priority"] = _priority(body["priority"])
    labels = [x for x in record.get("labels") or [] if x not in (body.get("remove_labels") or [])]
    labels += [x for x in body.get("add_labels") or [] if x not in labels]
    record["labels"] = labels
    record["updated_at"] = _now()
    return record


def _new_id(taken: set[str]) -> str:
    """`<prefix>-<hex>` with the prefix most of the file's ids use (`bd` when none); longer than the
    server's own ids so a local one cannot take a server-made one's place."""
    prefixes = Counter(ref.split("-", 1)[0] for ref in taken if "-" in ref)
    prefix = prefixes.most_common(1)[0][0] if prefixes else "bd"
    import secrets  # noqa: PLC0415 - it loads hashlib: only when a bead is made offline (start-up time)

    while (ref := f"{prefix}-{secrets.token_hex(4)}") in taken:
        pass
    return ref


def _priority(value: Any) -> int:
    """0-4, P0-P4 or a word, as the server reads it.  Raises: WireError: anything else."""
    if value is None:
        return 2
    text = str(value).strip().lower()
    if text in PRIORITY_WORDS:
        return PRIORITY_WORDS[text]
    digits = text.removeprefix("p")
    if digits.isdigit() and 0 <= int(digits) <= 4:
        return int(digits)
    raise WireError(f"priority must be 0-4, P0-P4 or critical/high/medium/low/backlog, got {value!r}",
                    code="invalid")


def _dependencies(ref: str, body: dict[str, Any], stamp: str) -> list[dict[str, Any]]:
    deps = [{"issue_id": ref, "depends_on_id": target, "type": "blocks", "created_at": stamp}
            for target in body.get("blocked_by") or []]
    if body.get("parent"):
        deps.append({"issue_id": ref, "depends_on_id": body["parent"], "type": "parent-child",
                     "created_at": stamp})
    return deps


# -- replay ---------------------------------------------------------------------------------------

class _NotYet(Exception):
    """The server asked us to come back later: stop, keeping the entry."""


def replay(client: Client) -> ServerUnreachable | None:
    """Apply the journal in order; returns the failure when the server is still unreachable.

    Each entry is reported on stderr (`replayed: ...` or `not applied: ...: why`); refused ones are
    kept in `.wire/journal.rejected.jsonl`. Nothing is done when another command is replaying.
    """
    root = client.root
    path = journal_path(root)
    with locked(root, wait=False) as mine:
        if not mine:
            return None
        for leftover in path.parent.glob(f".{JOURNAL_FILE}.*.tmp"):  # a rewrite killed before its rename
            leftover.unlink(missing_ok=True)
        lines = _read_lines(path)
        while lines:
            try:
                _apply(client, root, lines[0])
            except ServerUnreachable as exc:
                return exc
            except _NotYet:
                return None
            lines = lines[1:]
            _replace(path, lines)  # answered: never sent again
    return None


def _apply(client: Client, root: Path, line: str) -> None:
    entry = _parse(line)
    if entry.get("kind") == "sync":
        _replay_sync(client, root, entry)
        return
    what = str(entry.get("what") or "?")
    if entry.get("kind") != "call" or not all(entry.get(name) for name in ("key", "method", "path")):
        _rejected(root, entry or {"line": line}, "damaged journal entry")
        _say(f"not applied: {what}: damaged journal entry (kept in {WIRE_DIR}/{REJECTED_FILE})")
        return
    try:
        _, answer, _ = client.exchange(str(entry["method"]), str(entry["path"]), body=entry.get("body"),
                                       headers={IDEMPOTENCY_HEADER: str(entry["key"])})
    except ServerUnreachable:
        raise
    except WireError as exc:
        if exc.code in NOT_YET:
            raise _NotYet from exc
        if exc.code == "already_applied":
            _say(f"replayed: {what} ok (applied earlier)")
            return
        _rejected(root, entry, exc.message, exc.code)
        _say(f"not applied: {what}: {exc.message}")
        return
    _say(f"replayed: {what} ok")
    ref = _bead_of(str(entry["path"]))
    if ref:
        _track_claim(root, entry, ref, answer)
    if ref and client.write_through:
        from cli import beadsfile  # noqa: PLC0415 - it imports this module (a cycle at the top)

        beadsfile.write_through(client, [ref], locked=True)  # the replay holds the worktree lock


#: The journaled bead actions that start (True) or end (False) this worktree's claim.
_CLAIM_ACTIONS = {"claim": True, "release": False, "close": False}


def _track_claim(root: Path, entry: dict[str, Any], ref: str, answer: Any) -> None:
    """Keep `.wire/claims.json` in step with a replayed claim, release, close or status change, as
    `held` (cli/worktree.py) does for a call answered at once: else `whoami` and `status` go on
    counting commits for a bead closed offline, and never for one claimed offline."""
    action = str(entry["path"]).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    body = entry.get("body")
    if action in _CLAIM_ACTIONS:
        held = _CLAIM_ACTIONS[action]
    elif entry.get("method") == "PATCH" and isinstance(body, dict) and "status" in body:
        held = body["status"] == "in_progress"
    else:
        return
    from cli import gitstate  # noqa: PLC0415 - start-up time: git and hashing

    bead = answer.get("bead", answer) if isinstance(answer, dict) else None
    ref = bead.get("id") or ref if isinstance(bead, dict) else ref
    if held:
        gitstate.record_claim(root, ref)  # the claim is the server's from now, the replay
    else:
        gitstate.drop_claim(root, ref)


def _bead_of(path: str) -> str | None:
    """The bead a journaled call changed (`/v1/beads/<ref>[/action]`), or None."""
    parts = path.split("?", 1)[0].split("/")
    return unquote(parts[3]) if len(parts) >= 4 and parts[1:3] == ["v1", "beads"] and parts[3] else None


def _replay_sync(client: Client, root: Path, entry: dict[str, Any]) -> None:
    """Sync the beads edited offline, and only those (`pull` off: the rest of the file waits for the
    next `wire sync`), each with its line of the base; write back what the server answers."""
    from cli import beadsfile  # noqa: PLC0415 - it imports this module (a cycle at the top)

    what = str(entry.get("what") or "sync")
    ids = entry.get("ids")
    wanted = set(map(str, ids)) if isinstance(ids, list) else None
    lines = [line for line in _read_lines(root / BEADS_FILE)
             if wanted is None or _parse(line).get("id") in wanted]
    if not lines:
        _rejected(root, entry, f"the beads are no longer in {BEADS_FILE}")
        _say(f"not applied: {what}: {', '.join(map(str, ids or []))} no longer in {BEADS_FILE}")
        return
    base, _ = beadsfile.load_base(root)
    if base is not None:
        base = "".join(line + "\n" for line in base.split("\n")
                       if line.strip() and (wanted is None or _parse(line).get("id") in wanted))
    try:
        # incremental: nothing absent from this upload is deleted
        answer = client.sync("".join(line + "\n" for line in lines), "incremental", base=base, pull=False)
    except ServerUnreachable:
        raise
    except WireError as exc:
        if exc.code in NOT_YET:
            raise _NotYet from exc
        _rejected(root, entry, exc.message, exc.code)
        _say(f"not applied: {what}: {exc.message}")
        return
    if answer.get("records"):
        beadsfile.store_records(root, answer["records"])  # the replay holds the worktree lock
    counts = ", ".join(f"{answer.get(k, 0)} {k}" for k in ("created", "updated", "unchanged"))
    _say(f"replayed: {what} ok ({counts})")
    for conflict in answer.get("conflicts") or []:
        if conflict.get("kept") == "file":  # the offline edit was the later one: it is in
            _say(f"replayed: {what}: {conflict.get('id')}: {conflict.get('reason')}")
            continue
        _rejected(root, {**entry, "bead": conflict.get("id")}, str(conflict.get("reason")), "sync_conflict")
        _say(f"not applied: {what}: {conflict.get('id')}: {conflict.get('reason')}")


def _rejected(root: Path, entry: dict[str, Any], message: str, code: str | None = None) -> None:
    record = {**entry, "rejected_at": _now(), "error": {"code": code or "error", "message": message}}
    _append_line(root / WIRE_DIR / REJECTED_FILE, json.dumps(record, separators=(",", ":")))


def _say(text: str) -> None:
    click.echo(output.clean(text), err=True)
