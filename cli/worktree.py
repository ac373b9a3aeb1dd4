"""What a call of this worktree's workspace says about the worktree: the files it changed (auto-reserve,
`X-Wire-Changed`) and, while it holds claims, its git state (`X-Wire-Git`, cli/gitstate.py).

A `Client` mixin. Both come from one `git status` per command (`_status`): agents run a command
every few seconds, and each git process is a sizeable share of one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cli.transport import changed_headers

if TYPE_CHECKING:
    from cli.local import Workspace

#: Calls that wait rather than act: they keep presence but are no command (idle with claim).
PASSIVE_PATHS = ("/v1/watch", "/v1/wait-ready")
#: Seconds a computed git state is reused by a long-lived client (`wire mcp`, `wire watch`).
GIT_STATE_EVERY = 30
#: Seconds a `git status` serves the next calls: those of one command (a claim and its write-through).
STATUS_REUSE = 5


class WorktreeState:
    """Auto-reserve and git state headers, and the local claims file (`held`)."""

    if TYPE_CHECKING:
        auto_reserve: bool
        _changed_sent: bool
        _git_state: tuple[float, bool, str | None] | None
        _git_status: tuple[float, bool, bytes | None] | None
        _claiming: tuple[str, float] | None

        @property
        def workspace(self) -> Workspace | None: ...

    def _changed_headers(self, as_workspace: bool) -> dict[str, str]:
        """`X-Wire-Changed` on the command's first call as this worktree's workspace: the files `git
        status` shows modified or added, which the server reserves for us."""
        if not (as_workspace and self.auto_reserve) or self._changed_sent:
            return {}
        self._changed_sent = True
        if self.workspace is None:
            return {}  # an injected token, no worktree of ours: nothing to reserve
        from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

        paths = local.changed_in(self._status(self.workspace, untracked=False))
        return {} if paths is None else changed_headers(paths)

    def _status(self, workspace: Workspace, untracked: bool) -> bytes | None:
        """The worktree's `git status` (cli/local.py `git_status`), run once for the calls of a command:
        auto-reserve and the git state share it (one with untracked files serves both)."""
        kept = self._git_status
        if kept is not None and (kept[1] or not untracked) and time.monotonic() - kept[0] < STATUS_REUSE:
            return kept[2]
        from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

        raw = local.git_status(workspace.root, untracked)
        self._git_status = (time.monotonic(), untracked, raw)
        return raw

    def _git_headers(self, as_workspace: bool, path: str) -> dict[str, str]:
        """`X-Wire-Git` while this worktree holds claims (cli/gitstate.py): computed at most once per
        `GIT_STATE_EVERY` seconds, and afresh before a close (it records the commits)."""
        workspace = self.workspace
        if not as_workspace or workspace is None:
            return {}
        from cli import gitstate  # noqa: PLC0415 - start-up time: git and hashing

        passive = path in PASSIVE_PATHS
        fresh = path.endswith("/close")
        cached = self._git_state
        if cached is None or fresh or cached[1] != passive or time.monotonic() - cached[0] > GIT_STATE_EVERY:
            state = gitstate.header(workspace.root, not passive, lambda: self._status(workspace, True),
                                    self._claiming)
            cached = self._git_state = (time.monotonic(), passive, state)
        return {gitstate.GIT_HEADER: cached[2]} if cached[2] else {}

    @contextmanager
    def claiming(self, ref: str, ts: float) -> Iterator[None]:
        """The calls made inside carry the git state of this worktree holding `ref` since `ts` as well:
        the claim's own call, so the server has the holder's state without a call after it."""
        self._claiming, self._git_state = (ref, ts), None
        try:
            yield
        finally:
            self._claiming, self._git_state = None, None

    def held(self, ref: str, answer: Any, held: bool, ts: float | None = None) -> Any:
        """Keep `.wire/claims.json` in step with a claim change that the server accepted (`ts`: when
        the claim was made, default now)."""
        if self.workspace is not None:
            from cli import gitstate  # noqa: PLC0415 - start-up time: git and hashing

            bead = answer.get("bead", answer) if isinstance(answer, dict) else None
            ref = bead.get("id") or ref if isinstance(bead, dict) else ref
            if held:
                gitstate.record_claim(self.workspace.root, ref, ts)
            else:
                gitstate.drop_claim(self.workspace.root, ref)
            self._git_state = None
        return answer
