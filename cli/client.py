"""The CLI's client of the beadwire HTTP API (`/v1`, see docs/API.md).

`Client.call(name, **values)` sends any operation of the table (cli/operations.py); the per-area
methods (cli/requests_*.py) wrap the calls, and keep the local state some of them change (the claims
file, the beads file, the offline journal). `Client.request` is the one place where an answer's
`X-Wire-Banner` header is shown (cli/banner.py), so every command gets the banner, and where the
command's first call gets `X-Wire-Changed` (auto-reserve of the modified files). Errors are in
cli/errors.py, the socket transport in cli/transport.py.

Agents run `wire` hundreds of times an hour, so loading this module and making a call must stay
cheap: the modules of local state (cli/local.py, cli/gitstate.py, ...) are imported on first use,
each such import marked "start-up time".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import click

from cli import operations
from cli.errors import (
    CLAIM_HINT,
    HEALTH_PATH,
    SERVER_HEADER,
    WRONG_KEY_HINT,
    ClaimRejected,
    Conflict,
    Journaled,
    NotBeadwire,
    NotFound,
    NotInitialised,
    ServerUnreachable,
    UsageFailure,
    WaitTimedOut,
    WireError,
    error_from_response,
)
from cli.opspec import Operation
from cli.requests_beads import BeadRequests
from cli.requests_project import ProjectRequests
from cli.requests_team import TeamRequests
from cli.transport import (
    ADMIN_TOKEN_HEADER,
    BANNER_HEADER,
    CHANGED_HEADER,
    CHANGED_TRUNCATED_HEADER,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    IDEMPOTENCY_HEADER,
    RETRY_STATUSES,
    SEEN_HEADER,
    SYNC_TIMEOUT,
    USER_AGENT,
    WRITE_METHODS,
    Transport,
    banner_new,
    changed_headers,
    compact,
    decode,
    entries_of,
    entry_order,
    header,
    health_shaped,
    http_transport,
    new_request_id,
    query_string,
    retry_answer,
)
from cli.worktree import WorktreeState

#: Names commands, tests and other branches import from here (they moved to cli/errors.py and
#: cli/transport.py).
__all__ = ["ADMIN_TOKEN_HEADER", "CHANGED_HEADER", "CHANGED_TRUNCATED_HEADER", "CLAIM_HINT",
           "DEFAULT_TIMEOUT", "DEFAULT_URL", "IDEMPOTENCY_HEADER", "SYNC_TIMEOUT", "ClaimRejected", "Client",
           "Conflict", "Journaled", "NotBeadwire", "NotFound", "NotInitialised", "ServerUnreachable",
           "UsageFailure", "WaitTimedOut", "WireError", "bead_path", "changed_headers", "error_from_response",
           "http_transport", "pass_client"]

if TYPE_CHECKING:
    from cli.banner import Banner
    from cli.local import Workspace
    from cli.requests_base import Offline

#: The confirmation of a worktree that has shown nothing yet.
NOTHING_SEEN = "0-0"
#: Pauses between the attempts of a call (every call may be repeated: reads are safe, writes carry
#: their request id), when the server cannot be reached or answers 502-504.
RETRY_PAUSES = (0.2, 0.6)
#: How workspace tokens start (store/util.py); any other bearer a command passes is a project key.
WORKSPACE_TOKEN_PREFIX = "bw_ws_"
#: The operations with a `Client` method (cli/requests_*.py): generated commands and tools call that.
HELPERS = frozenset(name for area in (BeadRequests, TeamRequests, ProjectRequests) for name in vars(area)
                    if not name.startswith("_"))


class Client(BeadRequests, TeamRequests, ProjectRequests, WorktreeState):
    """Calls the API as this worktree's workspace (token and server from `.wire/workspace.json`).

    Everything is resolved lazily so commands that need no workspace (`init`, `serve`, `--help`)
    never touch it. Tests inject one with a fake `transport` and an explicit `url` and `token`.
    """

    def __init__(self, url: str | None = None, *, token: str | None = None,
                 transport: Transport | None = None, timeout: float = DEFAULT_TIMEOUT,
                 start: Path | None = None, auto_reserve: bool = True, write_through: bool = True) -> None:
        self._url = url.rstrip("/") if url else None
        self._token = token
        self._start = start
        self._workspace: Workspace | None = None
        self._looked = False
        self.transport: Transport = transport or http_transport
        self.timeout = timeout
        #: What this command has already shown of the banner (created on the first header).
        self.banner: Banner | None = None
        #: Send the modified files for auto-reserve (once per command, on its first call as the workspace).
        self.auto_reserve = auto_reserve
        #: After a bead change, put the bead's record into the worktree's beads file (cli/beadsfile.py).
        self.write_through = write_through
        self._changed_sent = False
        #: The offline journal is looked at (one stat) before the command's first call as the workspace.
        self._journal_checked = False
        #: Set when the journal replay found the server unreachable: the next call fails at once.
        self._unreachable: ServerUnreachable | None = None
        #: Server URLs known to be beadwire in this process (`check_server`).
        self._trusted: set[str] = set()
        #: The newest mailbox entry shown (`X-Wire-Seen`), read from `.wire/seen` on first use.
        self._seen: str | None = None
        #: (monotonic time, passive, `X-Wire-Git` value) of the last git state computed.
        self._git_state: tuple[float, bool, str | None] | None = None
        #: (monotonic time, with untracked files, output) of the last `git status` (`_status`).
        self._git_status: tuple[float, bool, bytes | None] | None = None
        #: (bead, since) a claim being made: its call's git state holds it already (`claiming`).
        self._claiming: tuple[str, float] | None = None
        #: A person's own token (`wire --as NAME`, WIRE_HUMAN_TOKEN): when set, every call is that
        #: person's, with their role's permissions, instead of the workspace's (cli/humans.py).
        self.person_token: str | None = None

    # -- local state --

    @property
    def workspace(self) -> Workspace | None:
        """This worktree's workspace file, found by walking up from the start dir (cached)."""
        if not self._looked:
            from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

            self._workspace, self._looked = local.find_workspace(self._start), True
        return self._workspace

    @property
    def url(self) -> str:
        """Server URL: `--url`/`WIRE_URL`, else the workspace's, else `DEFAULT_URL`.

        Raises:
            WireError: the URL is not `http(s)://HOST[:PORT][/prefix]`.
        """
        found = None if self._url else self.workspace
        return _checked_url(self._url or (found.url if found and found.url else DEFAULT_URL).rstrip("/"))

    @property
    def token(self) -> str:
        """The workspace token.  Raises: NotInitialised: no workspace file and no injected token."""
        if self._token:
            return self._token
        if self.workspace is None or not self.workspace.token:
            raise NotInitialised()
        return self.workspace.token

    @property
    def root(self) -> Path:
        """The worktree root: the workspace's, else the nearest git worktree, else cwd."""
        from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

        if self.workspace is not None:
            return self.workspace.root
        return local.find_worktree_root(self._start) or (self._start or Path.cwd())

    def headers(self, token: str | None) -> dict[str, str]:
        """Headers of every call: JSON, presence (`X-Wire-Branch`, `X-Wire-Host`), bearer."""
        from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

        headers = {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update(local.presence_headers(self.root))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    # -- requests --

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                auth: bool = True, token: str | None = None, timeout: float | None = None,
                offline: Offline = None, headers: dict[str, str] | None = None) -> Any:
        """Call `method path` and return the decoded JSON answer.

        `token` overrides the bearer; with `auth=False` and no `token` none is sent. A write with
        `offline` (what it does, e.g. `claim bd-12`) is journaled when the server cannot be reached;
        a callable `offline(request_id, failure)` instead returns the error to raise then.

        Raises:
            NotInitialised: the call needs the workspace token and there is none.
            Journaled: unreachable, and the call was kept in the journal (exit 5).
            WireError: any error answer, as the subclass `error_from_response` picks.
        """
        # made here so a journaled call keeps the id it was sent with: it may have been applied
        key = {IDEMPOTENCY_HEADER: new_request_id()} if method in WRITE_METHODS else None
        try:
            return self.exchange(method, path, body=body, query=query, auth=auth, token=token,
                                 timeout=timeout, headers={**(headers or {}), **(key or {})} or None)[1]
        except ServerUnreachable as exc:
            if offline is None or key is None or token or not auth or self.workspace is None:
                raise
            self._journal_checked = False  # a long-lived client (`wire mcp`) replays on its next call
            if callable(offline):
                raise offline(key[IDEMPOTENCY_HEADER], exc) from exc
            from cli import offline as journal  # noqa: PLC0415 - a cycle at the top; only when offline

            raise journal.keep(self, offline, method, path + query_string(query), body,
                               key[IDEMPOTENCY_HEADER], exc) from exc

    def exchange(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                 auth: bool = True, token: str | None = None, timeout: float | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any, Mapping[str, str]]:
        """Like `request`, with extra request headers; returns (status, answer, response headers).

        Raises:
            NotInitialised: the call needs the workspace token and there is none.
            WireError: any error answer (4xx/5xx); a 304 is returned, not raised.
        """
        import json  # noqa: PLC0415 - only once a call is made: `wire --help` never needs it (start-up time)

        if auth and not token and self.person_token:
            token = self.person_token  # the person acts, not this worktree's workspace
        bearer = token or (self.token if auth else None)
        if bearer:
            self.check_server()
        data = None if body is None else json.dumps(body).encode("utf-8")
        url = self.url + path + query_string(query)
        as_workspace = auth and not token
        if as_workspace and not self._journal_checked:
            self._replay_journal()
        git = self._git_headers(as_workspace, path)  # first: its `git status` serves auto-reserve too
        sent = {**self.headers(bearer), **self._changed_headers(as_workspace), **git, **(headers or {})}
        if as_workspace:
            sent[SEEN_HEADER] = self.seen
        if method in WRITE_METHODS and IDEMPOTENCY_HEADER not in sent:
            sent[IDEMPOTENCY_HEADER] = new_request_id()  # one per call, the same on every retry
        status, raw, *rest = self._send(method, url, data, sent, timeout or self.timeout)
        payload = decode(status, raw)
        answer_headers = rest[0] if rest else {}
        self._show_banner(answer_headers, payload)  # on failed answers too
        if as_workspace:
            self._confirm_shown(answer_headers, payload)
        if status >= 400:
            error = error_from_response(status, payload)
            if status == 401 and token and not token.startswith(WORKSPACE_TOKEN_PREFIX):
                error.hint = WRONG_KEY_HINT  # not "run `wire init` again": the key is what was refused
            raise error
        return status, payload, answer_headers

    def check_server(self) -> None:
        """Before a token or key goes to the server URL for the first time, make sure beadwire answers
        there (a mistyped WIRE_URL must not receive it).

        Trusted without a request: the URL this worktree registered with (`.wire/workspace.json`) and
        the URLs this user's `wire` verified before (`servers.json` in the config dir). Any other URL
        gets one `GET /v1/health` without credentials, remembered once it answers as beadwire.

        Raises:
            NotBeadwire: something else answered.
            ServerUnreachable: nothing answered (or a proxy's 502-504).
        """
        from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

        url = self.url
        if url in self._trusted:
            return
        ws = self.workspace
        if not (ws is not None and ws.url and ws.url.rstrip("/") == url) and not local.known_server(url):
            self._probe(url)
            local.remember_server(url)
        self._trusted.add(url)

    def _probe(self, url: str) -> None:
        """`GET /v1/health` without credentials.  Raises: NotBeadwire, ServerUnreachable."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        status, raw, *rest = self._send("GET", url + HEALTH_PATH, None, headers, self.timeout)
        if header(rest[0] if rest else {}, SERVER_HEADER) or health_shaped(raw):
            return
        if status in RETRY_STATUSES:
            raise ServerUnreachable(f"the server at {url} answered HTTP {status}")
        raise NotBeadwire(url, status)

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str],
              timeout: float) -> tuple[Any, ...]:
        """The transport, tried again after short pauses while the server is unreachable or
        restarting (502-504, or a request with the same id still running); a timeout is final.

        Raises:
            ServerUnreachable: every attempt failed.
        """
        if self._unreachable is not None:  # the journal replay just failed: don't wait for it again
            failure, self._unreachable = self._unreachable, None
            raise failure
        for pause in (*RETRY_PAUSES, None):
            try:
                answer = self.transport(method, url, data, headers, timeout)
            except ServerUnreachable as exc:
                if pause is None or not exc.retryable:
                    raise
            else:
                if pause is None or not retry_answer(answer[0], answer[1]):
                    return answer
            time.sleep(pause)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def catch_up(self) -> None:
        """Replay the offline journal now, if this command has not yet (before taking the worktree
        lock, which the replay takes too)."""
        if not self._journal_checked:
            self._replay_journal()

    def _replay_journal(self) -> None:
        """Apply what earlier commands journaled while offline (cheap when there is none: one stat)."""
        self._journal_checked = True
        if self.workspace is None:
            return
        from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

        if local.journal_path(self.workspace.root).exists():
            from cli import offline  # noqa: PLC0415 - imports this module (a cycle at the top)

            self._unreachable = offline.replay(self)

    @property
    def seen(self) -> str:
        """The newest mailbox entry this worktree has shown (`.wire/seen`; in memory without a worktree)."""
        if self._seen is None:
            from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

            found = local.read_seen(self.workspace.root) if self.workspace is not None else None
            self._seen = found or NOTHING_SEEN
        return self._seen

    def _confirm_shown(self, headers: Mapping[str, str], payload: Any) -> None:
        """Remember the newest mailbox entry this answer brought (banner items, `watch` items): the next
        call confirms it, so the server stops showing it. An answer that never arrived confirms
        nothing, and its items come again (a banner line counts as shown once the client has it)."""
        value = header(headers, BANNER_HEADER)
        items = payload.get("items") if isinstance(payload, dict) else None
        if not value and not items:
            return
        entries = entries_of(items) + (entries_of(banner_new(value)) if value else [])
        newest = max(entries, key=entry_order, default=None)
        if newest is None or entry_order(newest) <= entry_order(self.seen):
            return
        self._seen = newest
        if self.workspace is not None:
            from cli import local  # noqa: PLC0415 - start-up time: workspace files, when needed

            local.write_seen(self.workspace.root, newest)

    def _show_banner(self, headers: Mapping[str, str], payload: Any) -> None:
        """Print on stderr what the answer's banner holds that this command has not shown yet."""
        value = header(headers, BANNER_HEADER)
        if not value:
            return  # the usual case: nothing needs the caller, and cli.banner is never imported
        if self.banner is None:
            from cli.banner import Banner  # noqa: PLC0415 - start-up time: only with a banner

            self.banner = Banner()
        self.banner.show(value, payload)

    def get(self, path: str, **query: Any) -> Any:
        """GET with query parameters (None values are left out)."""
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST a JSON body (None values in a dict body are left out)."""
        return self.request("POST", path, body=compact(body), **kwargs)

    # -- the operations table --

    def call(self, name: str, /, *, payload: dict[str, Any] | None = None, token: str | None = None,
             auth: bool = True, timeout: float | None = None, offline: Offline = None,
             headers: dict[str, str] | None = None, **values: Any) -> Any:
        """Send operation `name` of the table with `values` (by parameter name; `payload` is a whole
        body given as is) and return the decoded answer; `offline` overrides what the row journals.

        Raises:
            KeyError: no such operation.
            Journaled, WireError: as `request`.
        """
        op = operations.operation(name)
        if offline is None:
            offline = operations.offline_label(op, {**(payload or {}), **values})
        return self.request(op.method, path_of(op, values), body=operations.body_of(op, values, payload),
                            query=operations.query_of(op, values), auth=auth, token=token, timeout=timeout,
                            offline=offline, headers=headers)

    def call_exchange(self, name: str, /, *, token: str | None = None, auth: bool = True,
                      headers: dict[str, str] | None = None,
                      **values: Any) -> tuple[int, Any, Mapping[str, str]]:
        """`call` through `exchange`: (status, answer, response headers), a 304 returned."""
        op = operations.operation(name)
        return self.exchange(op.method, path_of(op, values), body=operations.body_of(op, values, None),
                             query=operations.query_of(op, values), auth=auth, token=token, headers=headers)

    def perform(self, name: str, /, **values: Any) -> Any:
        """Operation `name` as generated commands and tools run it: its `Client` method when it has one
        (which keeps local state too), else `call`."""
        if name in HELPERS:
            return getattr(self, name)(**values)
        return self.call(name, **values)

    def through(self, answer: Any, ref: str | None, records: Any = None) -> Any:
        """Write the changed bead into the worktree's beads file (cli/beadsfile.py); the answer.
        `records`: the bead's records as the answer brought them (`X-Wire-Records`), else asked for."""
        if self.write_through and ref and self.workspace is not None:
            from cli import beadsfile  # noqa: PLC0415 - start-up time: after a bead change

            beadsfile.write_through(self, [ref], records=records)
        return answer



pass_client = click.make_pass_decorator(Client)


def path_of(op: Operation, values: dict[str, Any]) -> str:
    """The operation's path with its path parameters filled in, URL-encoded (a ref may hold `:` and `/`)."""
    return op.path.format(**{p.name: quote(str(int(values[p.name]) if p.kind is int else values[p.name]),
                                           safe="")
                             for p in operations.params_of(op, "path")})


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WireError(f"bad server URL {url!r}: expected http://HOST[:PORT] (from --url, WIRE_URL or "
                        ".wire/workspace.json)", code="bad_url")
    return url


def bead_path(ref: str, action: str = "") -> str:
    """`/v1/beads/<ref>[/<action>]` with the ref URL-encoded (it may hold `:` and `/`)."""
    path = _ref_path("/v1/beads", ref)
    return f"{path}/{action}" if action else path


def _ref_path(prefix: str, ref: str) -> str:
    return f"{prefix}/{quote(ref, safe='')}"
