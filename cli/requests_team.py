"""`Client` methods for identity, mail, chat, watch and reservations (routes in cli/ops_team.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from cli import operations
from cli.requests_base import Requests
from cli.transport import ADMIN_TOKEN_HEADER, MAX_QUERY, SLICE_GRACE


class TeamRequests(Requests):
    """Identity, mail, chat, watch, reservations."""

    def init(self, body: dict[str, Any], token: str | None, admin_token: str | None = None) -> Any:
        """`POST /v1/init`: register (or re-register) this worktree; `token` is key, own token or None;
        `admin_token` is the server's, which creating a project needs on a server bound beyond loopback."""
        headers = {ADMIN_TOKEN_HEADER: admin_token} if admin_token else None
        return self.call("init", payload=body, auth=False, token=token, headers=headers)

    def whoami(self) -> Any:
        """`GET /v1/whoami`."""
        return self.call("whoami")

    def status(self) -> Any:
        """`GET /v1/status`: me and the team."""
        return self.call("status")

    # -- mail --

    def send_mail(self, message: dict[str, Any] | None = None, **fields: Any) -> Any:
        """`POST /v1/mail` (`to`, `body`, `subject`?, `thread`?, `priority`?).

        Raises:
            NotFound: an unknown alias; the error's hint lists the server's suggestions.
            Journaled: the server is unreachable; the mail waits in the journal.
        """
        return self.call("send_mail", payload={**(message or {}), **fields})

    def mail(self, unread: bool = False, sender: str | None = None, limit: int | None = None) -> Any:
        """`GET /v1/mail`: mail and notices received, newest first."""
        return self.call("mail", unread=unread, sender=sender, limit=limit)

    def sent_mail(self, limit: int | None = None) -> Any:
        """`GET /v1/mail/sent`."""
        return self.call("sent_mail", limit=limit)

    def search_mail(self, text: str, limit: int | None = None) -> Any:
        """`GET /v1/mail/search`: sent or received, by subject and body."""
        return self.call("search_mail", text=text, limit=limit)

    def open_mail(self, message_id: int | None = None, sender: str | None = None) -> Any:
        """`POST /v1/mail/open`: show and acknowledge one message, a sender's unread, or every unread."""
        return self.call("open_mail", message_id=message_id, sender=sender)

    def ack(self, message_id: int) -> Any:
        """`POST /v1/mail/<id>/ack`."""
        return self.call("ack", message_id=message_id)

    # -- chat and watch --

    def chat(self, to: str, text: str, wait: int) -> Any:
        """`POST /v1/chat`: `{"message", "cursor"}`; with `wait` > 0, `to` sees us waiting."""
        return self.call("chat", to=to, text=text, wait=wait)

    def chat_wait(self, alias: str, after: Any, cursor: str | None, seconds: int) -> Any:
        """`GET /v1/chat/wait`: one long-poll slice for what `alias` says after message `after`."""
        return self.call("chat_wait", alias=alias, after=after, cursor=cursor, seconds=seconds,
                         timeout=seconds + SLICE_GRACE)

    def chat_done(self, alias: str, timeout: float | None = None) -> Any:
        """`POST /v1/chat/done`: stop showing us as waiting on `alias`."""
        return self.call("chat_done", alias=alias, timeout=timeout)

    def chat_pending(self) -> Any:
        """`GET /v1/chat/pending`: conversations, and who waits on us."""
        return self.call("chat_pending")

    def chat_history(self, alias: str, limit: int | None = None) -> Any:
        """`GET /v1/chat/history`: oldest first."""
        return self.call("chat_history", alias=alias, limit=limit)

    def watch(self, seconds: int, ready: bool = False, cursor: str | None = None) -> Any:
        """`GET /v1/watch`: one long-poll slice for new banner items or waiting chats; with `ready`, also
        beads that became ready for me since `cursor` (the answer's `cursor` is the next one)."""
        return self.call("watch", seconds=seconds, ready=ready, cursor=cursor if ready else None,
                         timeout=seconds + SLICE_GRACE)

    def wait_ready(self, ref: str | None = None, seconds: int = 25) -> Any:
        """`GET /v1/wait-ready`: one long-poll slice until bead `ref` (None: any bead for me in my repo) is
        ready: `{"ready": true, "bead": Bead}`, or `{"ready": false, "bead": null, "reasons"?}` when the
        slice ended first. Loop it with `long_poll` for longer waits (as `wire wait-ready` does)."""
        return self.call("wait_ready", ref=ref, seconds=seconds, timeout=seconds + SLICE_GRACE)

    # -- reservations --

    def lock(self, paths: list[str], ttl: int | None = None, bead: str | None = None,
             reason: str | None = None) -> Any:
        """`POST /v1/locks`: reserve (or renew); advisory, so conflicts come back, never an error."""
        return self.call("lock", paths=paths, ttl=ttl, bead=bead, reason=reason)

    def unlock(self, paths: list[str] | None) -> Any:
        """`DELETE /v1/locks`: release `paths`, or every reservation of ours when None."""
        return self.call("unlock", all=True) if paths is None else self.call("unlock", paths=paths)

    def locks(self, mine: bool = False) -> Any:
        """`GET /v1/locks`: the repo's live reservations (only ours with `mine`)."""
        return self.call("locks", mine=mine)

    def check_locks(self, paths: list[str]) -> Any:
        """`GET /v1/locks/check` (`POST` when the list is too long for a URL): who holds what overlaps."""
        query = urlencode([("path", p) for p in paths])
        if len(query) <= MAX_QUERY:
            op = operations.operation("check_locks")
            return self.request(op.method, f"{op.path}?{query}")
        return self.call("check_locks_long", paths=paths)
