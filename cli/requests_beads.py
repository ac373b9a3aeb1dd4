"""`Client` methods for beads, readiness, claims and sync (routes in cli/ops_beads.py).

A bead change also keeps local state: `.wire/claims.json` (`held`) and the worktree's beads file
(`through`); offline, a new bead or a field edit goes into the beads file (cli/offline.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from cli import operations
from cli.requests_base import Requests
from cli.transport import RECORDS_HEADER, SYNC_TIMEOUT

if TYPE_CHECKING:
    from cli.client import Client


class BeadRequests(Requests):
    """Beads, readiness, claims, subscriptions, sync."""

    def beads(self, **filters: Any) -> Any:
        """`GET /v1/beads` with filters (status, type, label, assignee, repo, priority, all, limit)."""
        return self.call("beads", **filters)

    def bead(self, ref: str) -> Any:
        """`GET /v1/beads/<ref>`."""
        return self.call("bead", ref=ref)

    def create_bead(self, bead: dict[str, Any] | None = None, **fields: Any) -> Any:
        """`POST /v1/beads`; offline, the bead goes into `.beads/issues.jsonl` (synced on replay)."""
        from cli import offline  # noqa: PLC0415 - a cycle at the top (cli.client)

        body = {**(bead or {}), **fields}
        client = cast("Client", self)
        answer = self.call("create_bead", payload=body,
                           offline=lambda key, exc: offline.create_locally(client, body, exc))
        return self.through(answer, answer.get("id") if isinstance(answer, dict) else None)

    def update_bead(self, ref: str, changes: dict[str, Any] | None = None, **fields: Any) -> Any:
        """`PATCH /v1/beads/<ref>` (status in_progress claims, closed closes, open releases); offline,
        field edits of a bead in `.beads/issues.jsonl` go there, the rest to the journal."""
        from cli import offline  # noqa: PLC0415 - a cycle at the top, as in create_bead

        body = {k: v for k, v in {**(changes or {}), **fields}.items() if v is not None and v != []}
        client = cast("Client", self)
        answer = self.call("update_bead", ref=ref, payload=body,
                           offline=lambda key, exc: offline.update_locally(client, ref, body, key, exc))
        if body.get("status") in ("in_progress", "closed", "open"):
            answer = self.held(ref, answer, body["status"] == "in_progress")
        return self.through(answer, ref)

    def comment(self, ref: str, text: str) -> Any:
        """`POST /v1/beads/<ref>/comments` (journaled offline)."""
        return self.through(self.call("comment", ref=ref, text=text), ref)

    def add_dep(self, ref: str, target: str, dep_type: str) -> Any:
        """`POST /v1/beads/<ref>/deps`: `ref` depends on `target`."""
        return self.through(self.call("add_dep", ref=ref, target=target, dep_type=dep_type), ref)

    def deps(self, ref: str) -> Any:
        """`GET /v1/beads/<ref>/deps`."""
        return self.call("deps", ref=ref)

    def claim(self, ref: str, jump_in: str | None = None) -> Any:
        """`POST /v1/beads/<ref>/claim`, in one call: it carries the git state of this worktree holding
        the bead, and its answer the bead's beads-file record (`X-Wire-Records`, left out of what is
        returned), so neither needs a second call (a server that sends no record is asked for it).

        Raises:
            ClaimRejected: someone else holds it, or it is not claimable.
        """
        ts = time.time()
        with cast("Client", self).claiming(ref, ts):
            answer = self.call("claim", ref=ref, jump_in=jump_in,
                               headers={RECORDS_HEADER: "1"} if self.write_through else None)
        records = answer.pop("records", None) if isinstance(answer, dict) else None
        return self.through(self.held(ref, answer, True, ts), ref, records)

    def release(self, ref: str, reason: str | None = None) -> Any:
        """`DELETE /v1/beads/<ref>/claim` (journaled offline); a person gives the holder a `reason`."""
        return self.through(self.held(ref, self.call("release", ref=ref, reason=reason or None), False), ref)

    def close(self, ref: str, reason: str | None = None) -> Any:
        """`POST /v1/beads/<ref>/close`: answers the bead and the beads it unblocked (journaled offline)."""
        return self.through(self.held(ref, self.call("close", ref=ref, reason=reason), False), ref)

    def reopen(self, ref: str) -> Any:
        """`POST /v1/beads/<ref>/reopen` (journaled offline)."""
        return self.through(self.call("reopen", ref=ref), ref)

    def ready(self, limit: int | None = None, role: str | None = None) -> Any:
        """`GET /v1/ready`: claimable beads, most urgent first, my role's first (`role`: only that role's)."""
        return self.call("ready", limit=limit, role=role)

    def explain(self, ref: str) -> Any:
        """`GET /v1/ready/<ref>`: whether a bead is ready, and why not."""
        return self.call("explain", ref=ref)

    def mine(self) -> Any:
        """`GET /v1/mine`: beads I hold."""
        return self.call("mine")

    def search(self, text: str, limit: int | None = None) -> Any:
        """`GET /v1/search`."""
        return self.call("search", text=text, limit=limit)

    def subscribe(self, ref: str) -> Any:
        """`POST /v1/beads/<ref>/subscribe`: get a notice when the bead's status changes."""
        return self.call("subscribe", ref=ref)

    def unsubscribe(self, ref: str) -> Any:
        """`DELETE /v1/beads/<ref>/subscribe`."""
        return self.call("unsubscribe", ref=ref)

    # -- sync --

    def sync(self, jsonl: str, mode: str, *, base: str | None = None, dry_run: bool = False,
             allow_delete: bool = False, pull: bool = True) -> Any:
        """`POST /v1/sync`: two-way sync of this repo's beads file against its base (`mode` full or
        incremental); the answer carries the records the file takes.

        Raises:
            Conflict: the sync would delete too much without `allow_delete` (code `sync_deletes`).
        """
        return self.call("sync", jsonl=jsonl, base=base, mode=mode, dry_run=dry_run,
                         allow_delete=allow_delete, pull=pull, timeout=SYNC_TIMEOUT)

    def file_records(self, refs: list[str]) -> Any:
        """`GET /v1/sync/records`: the beads-file records of beads of this repo (write-through)."""
        op = operations.operation("file_records")
        return self.request(op.method, op.path + "?" + urlencode([("id", ref) for ref in refs]))

    def sync_history(self, limit: int | None = None) -> Any:
        """`GET /v1/sync/history`: this repo's recent syncs, newest first."""
        return self.call("sync_history", limit=limit)

    def undo_sync(self, run_id: int) -> Any:
        """`POST /v1/sync/<id>/undo`: put back what a sync changed, as a new change."""
        return self.call("undo_sync", run_id=run_id, timeout=SYNC_TIMEOUT)
