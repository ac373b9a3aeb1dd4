"""The CLI's client of the beadwire HTTP API (`/v1`, see docs/API.md) and its error tree.

A plain stdlib socket (`http_transport`), opened on the first request: agents run `wire` hundreds
of times an hour, so loading this module and making a call must stay cheap. `error_from_response` is
the one place where an API error answer becomes an exception carrying the CLI exit code; `Client.request` is the one place where
an answer's `X-Wire-Banner` header is shown (cli/banner.py), so every command gets the banner,
and where the command's first call gets `X-Wire-Changed` (auto-reserve of the modified files).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from cli import output

if TYPE_CHECKING:
    from cli.banner import Banner
    from cli.local import Workspace

    #: (method, absolute url, body, headers, timeout) -> (status, raw body[, response headers]);
    #: a transport that returns no headers (old test fakes) simply never shows a banner.
    Transport = Callable[[str, str, bytes | None, dict[str, str], float],
                         tuple[int, bytes] | tuple[int, bytes, Mapping[str, str]]]

#: Server used when neither `--url`, `WIRE_URL` nor the workspace file names one.
DEFAULT_URL = "http://127.0.0.1:8765"
#: Seconds allowed to connect and for each read of an ordinary call.
DEFAULT_TIMEOUT = 15.0
#: Seconds allowed for a sync, which uploads a whole beads file.
SYNC_TIMEOUT = 120.0
#: Seconds a long-poll (`/v1/chat/wait`, `/v1/watch`) may ask the server to hold an answer.
SLICE_SECONDS = 25
#: Extra seconds the HTTP read of a long-poll slice is allowed beyond the slice itself.
SLICE_GRACE = 10.0
#: Seconds between retries while the server is unreachable during a long wait (e.g. restarting).
RETRY_PAUSE = 2.0
#: Shortest time between two empty long-poll slices, should a server answer them at once.
MIN_SLICE_INTERVAL = 0.5
#: Longest pause of a long wait the server refused with 429 (too many waiters): it backs off from the
#: answer's `Retry-After`, doubling while refused, with jitter so refused waiters do not return together.
MAX_BACKOFF = 120.0
#: API error codes that mean "too many of you right now": a long wait pauses and goes on.
BACKOFF_CODES = frozenset({"too_many_waiters", "rate_limited"})
#: Response header carrying what needs the caller (docs/API.md, "Messaging").
BANNER_HEADER = "X-Wire-Banner"
#: Request header confirming the newest mailbox entry (`entry` of a banner item) this worktree has
#: shown; the server shows every entry after it until a call confirms it (docs/API.md, "Messaging").
SEEN_HEADER = "X-Wire-Seen"
#: Calls that wait rather than act: they keep presence but are no command (idle with claim).
PASSIVE_PATHS = ("/v1/watch", "/v1/wait-ready")
#: Seconds a computed git state is reused by a long-lived client (`wire mcp`, `wire watch`).
GIT_STATE_EVERY = 30
#: The confirmation of a worktree that has shown nothing yet.
NOTHING_SEEN = "0-0"
#: Request header carrying the worktree's modified files (a JSON array), which the server auto-reserves;
#: the second one says the list was cut (then nothing is released for missing paths).
CHANGED_HEADER = "X-Wire-Changed"
CHANGED_TRUNCATED_HEADER = "X-Wire-Changed-Truncated"
#: Most paths, and bytes of header value, sent for auto-reserve (servers cap header lines near 8 KiB).
MAX_CHANGED_PATHS = 200
MAX_CHANGED_BYTES = 6000
#: Longest query string sent; longer inputs go in a body (servers cap the request line near 4 KiB).
MAX_QUERY = 2000
USER_AGENT = "wire/0.1"
#: Header on every beadwire answer (web/common.py): before a token or key goes to a URL for the first
#: time, `Client.check_server` asks `GET /v1/health` (no credentials) and looks for it.
SERVER_HEADER = "X-Beadwire"
HEALTH_PATH = "/v1/health"
#: The health answer of a server from before SERVER_HEADER (accepted too).
HEALTH_KEYS = frozenset({"status", "redis", "database"})
#: Request header carrying the server's admin token (creating a project on an exposed server).
ADMIN_TOKEN_HEADER = "X-Wire-Admin-Token"
#: Request header carrying a write's request id: the server applies it at most once (docs/API.md).
IDEMPOTENCY_HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Pauses between the attempts of a call (every call may be repeated: reads are safe, writes carry
#: their request id), when the server cannot be reached or answers 502-504.
RETRY_PAUSES = (0.2, 0.6)
RETRY_STATUSES = frozenset({502, 503, 504})

CLAIM_HINT = "pick other work with 'wire ready', mail the holder, or take it with --jump-in REASON"
#: A claim refused by the rule (blocked, deferred, an epic with open children, closed): nobody holds it,
#: so there is no one to mail and nothing to jump in on.
NOT_CLAIMABLE_HINT = "pick other work with 'wire ready' ('wire ready --explain ID' says what a bead waits for)"
#: A project key (`--key` / WIRE_PROJECT_KEY) the server does not know: running `wire init` again
#: would not help, the key is what is wrong.
WRONG_KEY_HINT = ("check the project key you gave (--key or WIRE_PROJECT_KEY): it may be mistyped, or a human "
                  "replaced it (`wire key rotate`); ask the human who holds the project key for the current one")
#: How workspace tokens start (store/util.py); any other bearer a command passes is a project key.
WORKSPACE_TOKEN_PREFIX = "bw_ws_"
UNREACHABLE_HINT = "is the server running? start one with `wire serve`, or point --url / WIRE_URL at it"


# -- errors ----------------------------------------------------------------------------------

class WireError(click.ClickException):
    """Base of every error the CLI reports: an API-style `code`, a message, details, an exit code."""

    exit_code = 1
    code = "error"
    hint: str | None = None

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.code
        self.details = details or {}
        self.hint = hint or self.hint
        # decided now, while the click context (which knows about --json) still exists
        self.json_mode = output.is_json()

    def to_dict(self) -> dict[str, Any]:
        """The body of the JSON error: `{"code", "message", ...details, "hint"?}`."""
        body = {**self.details, "code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the error (JSON on stdout in JSON mode, else text on stderr)."""
        output.show_error(self.to_dict(), self.json_mode)


class UsageFailure(WireError):
    """Raised for a usage error in JSON mode (click's own usage errors print text)."""

    exit_code = 2
    code = "usage"


class Conflict(WireError):
    """Raised on any 409: the request contradicts the current state."""

    exit_code = 3
    code = "conflict"


class ClaimRejected(Conflict):
    """Raised when a claim is refused (409 `claim_conflict`): the message names the holder, or says
    why the bead cannot be claimed (then the hint does not send the caller to a holder)."""

    code = "claim_conflict"
    hint = CLAIM_HINT

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if not self.details.get("holder"):
            self.hint = kwargs.get("hint") or NOT_CLAIMABLE_HINT


class NotFound(WireError):
    """Raised on 404: the bead, workspace or project does not exist."""

    exit_code = 4
    code = "not_found"


class ServerUnreachable(WireError):
    """Raised when the server cannot be reached (refused, timed out) or answers 502/503/504."""

    exit_code = 5
    code = "unreachable"
    hint = UNREACHABLE_HINT
    #: Refused or dropped (worth another try soon), as opposed to timed out or answered 502-504.
    retryable = False


class Journaled(ServerUnreachable):
    """Raised when the server is unreachable and the call was kept in `.wire/journal.jsonl` (or the
    bead edit made in `.beads/issues.jsonl`): the next command that reaches the server applies it."""

    code = "offline"
    hint = "the next `wire` command that reaches the server applies it, and reports anything refused"

    def show(self, file: IO[Any] | None = None) -> None:
        """A warning, not an error: nothing is lost (JSON mode prints the usual error body)."""
        if self.json_mode:
            super().show(file)
            return
        click.echo(f"warning: {output.clean(self.message)}", err=True)
        click.echo(f"hint: {self.hint}", err=True)


class WaitTimedOut(WireError):
    """Raised when a blocking wait (chat, watch) ends without an answer."""

    exit_code = 6
    code = "wait_timeout"


class NotBeadwire(WireError):
    """Raised when the server URL answers, but not as beadwire: no token or key was sent to it."""

    code = "not_beadwire"
    hint = ("WIRE_URL (or --url) points at something else: set it to the beadwire server's URL "
            "(`wire serve` listens on http://127.0.0.1:8765 by default)")

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url} is not a beadwire server (GET {HEALTH_PATH} answered HTTP {status} without "
                         f"beadwire's {SERVER_HEADER} header); nothing was sent to it", details={"url": url})


class NotInitialised(WireError):
    """Raised when no `.wire/workspace.json` is found for the current directory."""

    code = "not_initialised"

    def __init__(self) -> None:
        super().__init__("not initialised: run `wire init --project SLUG`")


#: Exception class by HTTP status; anything else 4xx/5xx is a plain `WireError` (exit 1).
STATUS_ERRORS: dict[int, type[WireError]] = {
    404: NotFound, 409: Conflict, 502: ServerUnreachable, 503: ServerUnreachable, 504: ServerUnreachable,
}
#: Exception class by API error code, where the code is more specific than the status.
CODE_ERRORS: dict[str, type[WireError]] = {"claim_conflict": ClaimRejected}
#: Next steps printed under some errors.
HINTS = {
    "ambiguous": "qualify the id with its repo: <repo>:<id> (e.g. shop:bd-12)",
    "unauthorized": "run `wire init` again in this worktree",
    "cycle": "see the graph with `wire deps ID`",
    "not_held": "the beads you hold: `wire mine`",
    "rate_limited": "too many calls too fast: wait and retry; a loop calling wire needs a pause",
}


def error_from_response(status: int, payload: Any) -> WireError:
    """Turn an API error answer (`{"error": {"code", "message", ...}}`) into its exception."""
    body = payload.get("error") if isinstance(payload, dict) else None
    details = dict(body) if isinstance(body, dict) else {}
    code = str(details.pop("code", None) or f"http_{status}")
    message = str(details.pop("message", None) or f"the server answered HTTP {status}")
    cls = CODE_ERRORS.get(code) or STATUS_ERRORS.get(status, WireError)
    return cls(message, code=code, details=details, hint=HINTS.get(code) or _suggestions(details, message))


def _suggestions(details: dict[str, Any], message: str) -> str | None:
    """`did you mean: bob, bobby` from an answer's `suggestions` (unknown alias), unless the
    message already says it."""
    names = details.get("suggestions")
    if isinstance(names, list) and names and "did you mean" not in message.lower():
        return "did you mean: " + ", ".join(str(n) for n in names)
    return None


# -- transport -------------------------------------------------------------------------------

def http_transport(method: str, url: str, body: bytes | None, headers: dict[str, str],
                   timeout: float) -> tuple[int, bytes, Mapping[str, str]]:
    """Send one HTTP/1.1 request on a fresh socket and return (status, raw body, response headers).

    A plain socket rather than `http.client`: that module pulls in `email` and `ssl`, a fifth of a
    one-shot command's start-up (bench/cli_startup.py). `ssl` is imported only for an https URL.

    Raises:
        ServerUnreachable: connection refused, DNS failure, timeout, dropped connection or a
            malformed answer.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    try:
        sock = socket.create_connection((_ascii_host(host), port), timeout=timeout)
        try:
            sock = _tls(sock, host) if https else sock
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            sock.sendall(_request_bytes(method, target, _host_header(host, parts.port), body, headers))
            with sock.makefile("rb") as answer:
                return _read_answer(answer, method)
        finally:
            sock.close()
    except OSError as exc:
        where = f"{parts.scheme}://{parts.netloc}"
        failure = ServerUnreachable(f"cannot reach the beadwire server at {where}: {_reason(exc)}")
        # refused, dropped or garbled: worth another try soon; a timeout already took its time
        failure.retryable = isinstance(exc, ConnectionError)
        raise failure from exc


class BadAnswer(ConnectionError):
    """The server closed the connection early or sent something that is not an HTTP answer."""


#: Longest status or header line read, and most header lines (as `http.client`).
MAX_LINE, MAX_HEADERS = 65536, 100
#: Methods whose request always carries a Content-Length, 0 without a body (as `http.client`).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _ascii_host(host: str) -> str | bytes:
    """An ASCII host as bytes: `getaddrinfo` would otherwise load the idna codec for every call."""
    return host.encode("ascii") if host.isascii() else host


def _host_header(host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _tls(sock: Any, host: str) -> Any:
    import ssl

    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context.wrap_socket(sock, server_hostname=host)


def _request_bytes(method: str, target: str, host: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    """The request head and body; a header with a line break is refused, as `http.client` does.

    Raises:
        ValueError: a line break or other control character in the target or a header.
    """
    sent = {"Host": host, "Accept-Encoding": "identity", **headers, "Connection": "close"}
    if body is not None or method in BODY_METHODS:
        sent["Content-Length"] = str(len(body or b""))
    lines = [f"{method} {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in sent.items()]
    if any(ch in line for line in lines for ch in "\r\n\0") or any(ch <= " " for ch in target):
        raise ValueError(f"invalid character in the request {method} {target!r} or its headers")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _read_answer(answer: IO[bytes], method: str) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers of the answer on `answer` (skipping any 1xx interim answers).

    Raises:
        BadAnswer: closed early, or not HTTP.
    """
    while True:
        status = _status(_line(answer))
        headers = _headers(answer)
        if not 100 <= status < 200:
            break
    if method == "HEAD" or status in (204, 304):
        return status, b"", headers
    if "chunked" in (_header(headers, "Transfer-Encoding") or "").lower():
        return status, _chunked(answer), headers
    length = _header(headers, "Content-Length")
    if length is None:
        return status, answer.read(), headers  # until the server closes (we sent Connection: close)
    return status, _exactly(answer, _number(length, 10)), headers


def _line(answer: IO[bytes]) -> bytes:
    line = answer.readline(MAX_LINE + 1)
    if not line:
        raise BadAnswer("the server closed the connection without an answer")
    if len(line) > MAX_LINE:
        raise BadAnswer("answer line too long")
    return line


def _status(line: bytes) -> int:
    version, _, rest = line.decode("latin-1").partition(" ")
    code = rest.strip().partition(" ")[0]
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise BadAnswer(f"not an HTTP answer: {line[:80]!r}")
    return int(code)


def _headers(answer: IO[bytes]) -> dict[str, str]:
    """The header lines up to the blank one; a repeated header keeps its last value."""
    headers: dict[str, str] = {}
    last = None
    for _ in range(MAX_HEADERS + 1):
        line = _line(answer).decode("latin-1").rstrip("\r\n")
        if not line:
            return headers
        if line[0] in " \t" and last is not None:  # an obsolete folded continuation line
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if colon:
            last = name.strip()
            headers[last] = value.strip()
    raise BadAnswer("too many header lines")


def _number(text: str, base: int) -> int:
    try:
        value = int(text.strip(), base)
    except ValueError:
        value = -1
    if value < 0:
        raise BadAnswer(f"bad length in the answer: {text[:40]!r}")
    return value


def _exactly(answer: IO[bytes], size: int) -> bytes:
    data = answer.read(size)
    if len(data) < size:
        raise BadAnswer(f"the answer ended after {len(data)} of {size} bytes")
    return data


def _chunked(answer: IO[bytes]) -> bytes:
    body = bytearray()
    while size := _number(_line(answer).split(b";", 1)[0].decode("latin-1"), 16):
        body += _exactly(answer, size)
        _line(answer)  # the CRLF after each chunk
    while _line(answer).strip():  # trailers, up to the blank line
        pass
    return bytes(body)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by case-insensitive name."""
    lower = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lower), None)


def backoff(retry_after: Any, refused: int) -> float:
    """Seconds to pause after the `refused`-th 429 in a row: `Retry-After` (else 5 s), doubled per
    refusal, at most `MAX_BACKOFF`, between half and all of it at random."""
    import random

    try:
        base = max(1.0, float(retry_after))
    except (TypeError, ValueError):
        base = 5.0
    ceiling = min(MAX_BACKOFF, base * 2 ** min(refused - 1, 10))
    return random.uniform(ceiling / 2, ceiling)


def long_poll(call: Callable[[int], Any], wait: float | None, *, reached: bool = True) -> Any:
    """Call `call(slice_seconds)` until it answers something other than None, or `wait` ends.

    Each slice asks the server to hold the answer at most `SLICE_SECONDS` (less near the end);
    `wait=None` waits forever. While the server is unreachable (restarting, 502-504) the wait goes
    on with short pauses, so it survives a restart; with `reached=False` (nothing has answered yet
    in this command) the first such failure is raised instead, since the server is likely not up.
    A 429 (too many waiters, or calls) pauses the wait as the server asks (`backoff`) and goes on.
    Returns the first answer that is not None, or None when the wait ended.

    Raises:
        ServerUnreachable: the very first call failed and `reached` is False.
        WireError: any error answer other than unreachable and 429.
    """
    import math
    import time

    deadline = math.inf if wait is None else time.monotonic() + wait
    refused = 0
    while (remaining := deadline - time.monotonic()) > 0:
        started = time.monotonic()
        try:
            answer = call(max(1, math.ceil(min(SLICE_SECONDS, remaining))))
        except ServerUnreachable:
            if not reached:
                raise
            pause = RETRY_PAUSE
        except WireError as exc:
            if exc.code not in BACKOFF_CODES:
                raise
            reached, refused = True, refused + 1
            pause = backoff(exc.details.get("retry_after"), refused)
        else:
            reached, refused = True, 0
            if answer is not None:
                return answer
            # an empty slice should have lasted the slice; never spin on a server that answers at once
            pause = MIN_SLICE_INTERVAL - (time.monotonic() - started)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    return None


# -- client ----------------------------------------------------------------------------------

class Client:
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
        #: A person's own token (`wire --as NAME`, WIRE_HUMAN_TOKEN): when set, every call is that
        #: person's, with their role's permissions, instead of the workspace's (cli/humans.py).
        self.person_token: str | None = None

    # -- local state --

    @property
    def workspace(self) -> Workspace | None:
        """This worktree's workspace file, found by walking up from the start dir (cached)."""
        if not self._looked:
            from cli import local

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
        from cli import local

        if self.workspace is not None:
            return self.workspace.root
        return local.find_worktree_root(self._start) or (self._start or Path.cwd())

    def headers(self, token: str | None) -> dict[str, str]:
        """Headers of every call: JSON, presence (`X-Wire-Branch`, `X-Wire-Host`), bearer."""
        from cli import local

        headers = {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update(local.presence_headers(self.root))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    # -- requests --

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                auth: bool = True, token: str | None = None, timeout: float | None = None,
                offline: str | Callable[[str, ServerUnreachable], WireError] | None = None) -> Any:
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
                                 timeout=timeout, headers=key)[1]
        except ServerUnreachable as exc:
            if offline is None or key is None or token or not auth or self.workspace is None:
                raise
            self._journal_checked = False  # a long-lived client (`wire mcp`) replays on its next call
            if callable(offline):
                raise offline(key[IDEMPOTENCY_HEADER], exc) from exc
            from cli import offline as journal

            raise journal.keep(self, offline, method, path + _query_string(query), body,
                               key[IDEMPOTENCY_HEADER], exc) from exc

    def exchange(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                 auth: bool = True, token: str | None = None, timeout: float | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any, Mapping[str, str]]:
        """Like `request`, with extra request headers; returns (status, answer, response headers).

        Raises:
            NotInitialised: the call needs the workspace token and there is none.
            WireError: any error answer (4xx/5xx); a 304 is returned, not raised.
        """
        import json

        if auth and not token and self.person_token:
            token = self.person_token  # the person acts, not this worktree's workspace
        bearer = token or (self.token if auth else None)
        if bearer:
            self.check_server()
        data = None if body is None else json.dumps(body).encode("utf-8")
        url = self.url + path + _query_string(query)
        as_workspace = auth and not token
        if as_workspace and not self._journal_checked:
            self._replay_journal()
        sent = {**self.headers(bearer), **self._changed_headers(as_workspace), **self._git_headers(as_workspace, path),
                **(headers or {})}
        if as_workspace:
            sent[SEEN_HEADER] = self.seen
        if method in WRITE_METHODS and IDEMPOTENCY_HEADER not in sent:
            sent[IDEMPOTENCY_HEADER] = new_request_id()  # one per call, the same on every retry
        status, raw, *rest = self._send(method, url, data, sent, timeout or self.timeout)
        payload = _decode(status, raw)
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
        from cli import local

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
        if _header(rest[0] if rest else {}, SERVER_HEADER) or _health_shaped(raw):
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
        import time

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
                if pause is None or not _retry_answer(answer[0], answer[1]):
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
        from cli import offline

        if offline.journal_path(self.workspace.root).exists():
            self._unreachable = offline.replay(self)

    def _changed_headers(self, as_workspace: bool) -> dict[str, str]:
        """`X-Wire-Changed` on the command's first call as this worktree's workspace: the files `git
        status` shows modified or added (one git process), which the server reserves for us."""
        if not (as_workspace and self.auto_reserve) or self._changed_sent:
            return {}
        self._changed_sent = True
        if self.workspace is None:
            return {}  # an injected token, no worktree of ours: nothing to reserve
        from cli import local

        paths = local.changed_paths(self.workspace.root)
        return {} if paths is None else changed_headers(paths)

    def _git_headers(self, as_workspace: bool, path: str) -> dict[str, str]:
        """`X-Wire-Git` while this worktree holds claims (cli/gitstate.py): computed at most once per
        `GIT_STATE_EVERY` seconds, and afresh before a close (it records the commits)."""
        if not as_workspace or self.workspace is None:
            return {}
        import time

        from cli import gitstate

        passive = path in PASSIVE_PATHS
        fresh = path.endswith("/close")
        cached = self._git_state
        if cached is None or fresh or cached[1] != passive or time.monotonic() - cached[0] > GIT_STATE_EVERY:
            cached = self._git_state = (time.monotonic(), passive, gitstate.header(self.workspace.root, not passive))
        return {gitstate.GIT_HEADER: cached[2]} if cached[2] else {}

    def _held(self, ref: str, answer: Any, held: bool) -> Any:
        """Keep `.wire/claims.json` in step with a claim change that the server accepted."""
        if self.workspace is not None:
            from cli import gitstate

            bead = answer.get("bead", answer) if isinstance(answer, dict) else None
            ref = bead.get("id") or ref if isinstance(bead, dict) else ref
            if held:
                gitstate.record_claim(self.workspace.root, ref)
            else:
                gitstate.drop_claim(self.workspace.root, ref)
            self._git_state = None
        return answer

    @property
    def seen(self) -> str:
        """The newest mailbox entry this worktree has shown (`.wire/seen`; in memory without a worktree)."""
        if self._seen is None:
            from cli import local

            found = local.read_seen(self.workspace.root) if self.workspace is not None else None
            self._seen = found or NOTHING_SEEN
        return self._seen

    def _confirm_shown(self, headers: Mapping[str, str], payload: Any) -> None:
        """Remember the newest mailbox entry this answer brought (banner items, `watch` items): the next
        call confirms it, so the server stops showing it. An answer that never arrived confirms
        nothing, and its items come again (a banner line counts as shown once the client has it)."""
        value = _header(headers, BANNER_HEADER)
        items = payload.get("items") if isinstance(payload, dict) else None
        if not value and not items:
            return
        entries = _entries(items) + (_entries(_banner_new(value)) if value else [])
        newest = max(entries, key=_entry_order, default=None)
        if newest is None or _entry_order(newest) <= _entry_order(self.seen):
            return
        self._seen = newest
        if self.workspace is not None:
            from cli import local

            local.write_seen(self.workspace.root, newest)

    def _show_banner(self, headers: Mapping[str, str], payload: Any) -> None:
        """Print on stderr what the answer's banner holds that this command has not shown yet."""
        value = _header(headers, BANNER_HEADER)
        if not value:
            return  # the usual case: nothing needs the caller, and cli.banner is never imported
        if self.banner is None:
            from cli.banner import Banner

            self.banner = Banner()
        self.banner.show(value, payload)

    def get(self, path: str, **query: Any) -> Any:
        """GET with query parameters (None values are left out)."""
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST a JSON body (None values in a dict body are left out)."""
        return self.request("POST", path, body=_compact(body), **kwargs)

    # -- identity --

    def init(self, body: dict[str, Any], token: str | None, admin_token: str | None = None) -> Any:
        """`POST /v1/init`: register (or re-register) this worktree; `token` is key, own token or None;
        `admin_token` is the server's, which creating a project needs on a server bound beyond loopback."""
        if not admin_token:
            return self.post("/v1/init", body, auth=False, token=token)
        return self.exchange("POST", "/v1/init", body=_compact(body), auth=False, token=token,
                             headers={ADMIN_TOKEN_HEADER: admin_token})[1]

    def whoami(self) -> Any:
        """`GET /v1/whoami`."""
        return self.get("/v1/whoami")

    def status(self) -> Any:
        """`GET /v1/status`: me and the team."""
        return self.get("/v1/status")

    # -- beads --

    def beads(self, **filters: Any) -> Any:
        """`GET /v1/beads` with filters (status, type, label, assignee, repo, priority, all, limit)."""
        return self.get("/v1/beads", **filters)

    def bead(self, ref: str) -> Any:
        """`GET /v1/beads/<ref>`."""
        return self.get(bead_path(ref))

    def create_bead(self, body: dict[str, Any]) -> Any:
        """`POST /v1/beads`; offline, the bead goes into `.beads/issues.jsonl` (synced on replay)."""
        from cli import offline

        answer = self.post("/v1/beads", body, offline=lambda key, exc: offline.create_locally(self, body, exc))
        return self._through(answer, answer.get("id") if isinstance(answer, dict) else None)

    def update_bead(self, ref: str, body: dict[str, Any]) -> Any:
        """`PATCH /v1/beads/<ref>` (status in_progress claims, closed closes, open releases); offline,
        field edits of a bead in `.beads/issues.jsonl` go there, the rest to the journal."""
        from cli import offline

        body = _compact(body)
        answer = self.request("PATCH", bead_path(ref), body=body,
                              offline=lambda key, exc: offline.update_locally(self, ref, body, key, exc))
        if body.get("status") in ("in_progress", "closed", "open"):
            answer = self._held(ref, answer, body["status"] == "in_progress")
        return self._through(answer, ref)

    def comment(self, ref: str, text: str) -> Any:
        """`POST /v1/beads/<ref>/comments` (journaled offline)."""
        return self._through(self.post(bead_path(ref, "comments"), {"text": text}, offline=f"comment {ref}"), ref)

    def add_dep(self, ref: str, target: str, dep_type: str) -> Any:
        """`POST /v1/beads/<ref>/deps`: `ref` depends on `target`."""
        return self._through(self.post(bead_path(ref, "deps"), {"target": target, "type": dep_type}), ref)

    def deps(self, ref: str) -> Any:
        """`GET /v1/beads/<ref>/deps`."""
        return self.get(bead_path(ref, "deps"))

    def claim(self, ref: str, jump_in: str | None = None) -> Any:
        """`POST /v1/beads/<ref>/claim`.  Raises: ClaimRejected: someone else holds it, or not claimable."""
        answer = self.post(bead_path(ref, "claim"), {"jump_in": jump_in}, offline=f"claim {ref}")
        return self._through(self._held(ref, answer, True), ref)

    def release(self, ref: str, reason: str | None = None) -> Any:
        """`DELETE /v1/beads/<ref>/claim` (journaled offline); a person gives the holder a `reason`."""
        body = {"reason": reason} if reason else None
        answer = self.request("DELETE", bead_path(ref, "claim"), body=body, offline=f"release {ref}")
        return self._through(self._held(ref, answer, False), ref)

    def close(self, ref: str, reason: str | None = None) -> Any:
        """`POST /v1/beads/<ref>/close`: answers the bead and the beads it unblocked (journaled offline)."""
        answer = self.post(bead_path(ref, "close"), {"reason": reason}, offline=f"close {ref}")
        return self._through(self._held(ref, answer, False), ref)

    def reopen(self, ref: str) -> Any:
        """`POST /v1/beads/<ref>/reopen` (journaled offline)."""
        return self._through(self.post(bead_path(ref, "reopen"), {}, offline=f"reopen {ref}"), ref)

    def ready(self, limit: int | None = None, role: str | None = None) -> Any:
        """`GET /v1/ready`: claimable beads, most urgent first, my role's first (`role`: only that role's)."""
        return self.get("/v1/ready", limit=limit, role=role)

    def explain(self, ref: str) -> Any:
        """`GET /v1/ready/<ref>`: whether a bead is ready, and why not."""
        return self.get(_ref_path("/v1/ready", ref))

    def mine(self) -> Any:
        """`GET /v1/mine`: beads I hold."""
        return self.get("/v1/mine")

    def search(self, text: str, limit: int | None = None) -> Any:
        """`GET /v1/search`."""
        return self.get("/v1/search", q=text, limit=limit)

    def sync(self, jsonl: str, mode: str, *, base: str | None = None, dry_run: bool = False,
             allow_delete: bool = False, pull: bool = True) -> Any:
        """`POST /v1/sync`: two-way sync of this repo's beads file against its base (`mode` full or
        incremental); the answer carries the records the file takes.

        Raises:
            Conflict: the sync would delete too much without `allow_delete` (code `sync_deletes`).
        """
        body = {"jsonl": jsonl, "base": base, "mode": mode, "dry_run": dry_run, "allow_delete": allow_delete,
                "pull": pull}
        return self.post("/v1/sync", body, timeout=SYNC_TIMEOUT)

    def file_records(self, refs: list[str]) -> Any:
        """`GET /v1/sync/records`: the beads-file records of beads of this repo (write-through)."""
        from urllib.parse import urlencode

        return self.request("GET", "/v1/sync/records?" + urlencode([("id", ref) for ref in refs]))

    def sync_history(self, limit: int | None = None) -> Any:
        """`GET /v1/sync/history`: this repo's recent syncs, newest first."""
        return self.get("/v1/sync/history", limit=limit)

    def undo_sync(self, run_id: int) -> Any:
        """`POST /v1/sync/<id>/undo`: put back what a sync changed, as a new change."""
        return self.post(f"/v1/sync/{int(run_id)}/undo", {}, timeout=SYNC_TIMEOUT)

    def _through(self, answer: Any, ref: str | None) -> Any:
        """Write the changed bead into the worktree's beads file (cli/beadsfile.py); the answer."""
        if self.write_through and ref and self.workspace is not None:
            from cli import beadsfile

            beadsfile.write_through(self, [ref])
        return answer

    def subscribe(self, ref: str) -> Any:
        """`POST /v1/beads/<ref>/subscribe`: get a notice when the bead's status changes."""
        return self.post(bead_path(ref, "subscribe"), {})

    def unsubscribe(self, ref: str) -> Any:
        """`DELETE /v1/beads/<ref>/subscribe`."""
        return self.request("DELETE", bead_path(ref, "subscribe"))

    # -- mail --

    def send_mail(self, body: dict[str, Any]) -> Any:
        """`POST /v1/mail` (`to`, `body`, `subject`?, `thread`?, `priority`?).

        Raises:
            NotFound: an unknown alias; the error's hint lists the server's suggestions.
            Journaled: the server is unreachable; the mail waits in the journal.
        """
        return self.post("/v1/mail", body, offline=f"mail to {body.get('to')}")

    def mail(self, unread: bool = False, sender: str | None = None, limit: int | None = None) -> Any:
        """`GET /v1/mail`: mail and notices received, newest first."""
        return self.request("GET", "/v1/mail", query={"unread": unread, "from": sender, "limit": limit})

    def sent_mail(self, limit: int | None = None) -> Any:
        """`GET /v1/mail/sent`."""
        return self.get("/v1/mail/sent", limit=limit)

    def search_mail(self, text: str, limit: int | None = None) -> Any:
        """`GET /v1/mail/search`: sent or received, by subject and body."""
        return self.get("/v1/mail/search", q=text, limit=limit)

    def open_mail(self, message_id: int | None = None, sender: str | None = None) -> Any:
        """`POST /v1/mail/open`: show and acknowledge one message, a sender's unread, or every unread."""
        return self.post("/v1/mail/open", {"id": message_id, "from": sender})

    def ack(self, message_id: int) -> Any:
        """`POST /v1/mail/<id>/ack`."""
        return self.post(f"/v1/mail/{int(message_id)}/ack", {})

    # -- chat and watch --

    def chat(self, to: str, text: str, wait: int) -> Any:
        """`POST /v1/chat`: `{"message", "cursor"}`; with `wait` > 0, `to` sees us waiting."""
        return self.post("/v1/chat", {"to": to, "body": text, "wait": wait})

    def chat_wait(self, alias: str, after: Any, cursor: str | None, seconds: int) -> Any:
        """`GET /v1/chat/wait`: one long-poll slice for what `alias` says after message `after`."""
        return self.request("GET", "/v1/chat/wait", timeout=seconds + SLICE_GRACE,
                            query={"with": alias, "after": after, "cursor": cursor, "timeout": seconds})

    def chat_done(self, alias: str, timeout: float | None = None) -> Any:
        """`POST /v1/chat/done`: stop showing us as waiting on `alias`."""
        return self.post("/v1/chat/done", {"with": alias}, timeout=timeout)

    def chat_pending(self) -> Any:
        """`GET /v1/chat/pending`: conversations, and who waits on us."""
        return self.get("/v1/chat/pending")

    def chat_history(self, alias: str, limit: int | None = None) -> Any:
        """`GET /v1/chat/history`: oldest first."""
        return self.request("GET", "/v1/chat/history", query={"with": alias, "limit": limit})

    def watch(self, seconds: int, ready: bool = False, cursor: str | None = None) -> Any:
        """`GET /v1/watch`: one long-poll slice for new banner items or waiting chats; with `ready`, also
        beads that became ready for me since `cursor` (the answer's `cursor` is the next one)."""
        query = {"timeout": seconds, "ready": ready, "cursor": cursor if ready else None}
        return self.request("GET", "/v1/watch", query=query, timeout=seconds + SLICE_GRACE)

    def wait_ready(self, ref: str | None = None, seconds: int = 25) -> Any:
        """`GET /v1/wait-ready`: one long-poll slice until bead `ref` (None: any bead for me in my repo) is
        ready: `{"ready": true, "bead": Bead}`, or `{"ready": false, "bead": null, "reasons"?}` when the
        slice ended first. Loop it with `long_poll` for longer waits (as `wire wait-ready` does)."""
        return self.request("GET", "/v1/wait-ready", query={"bead": ref, "timeout": seconds},
                            timeout=seconds + SLICE_GRACE)

    # -- escalations (`key`: the project key; humans only where the API says so) --

    def escalate(self, body: dict[str, Any]) -> Any:
        """`POST /v1/escalations`: ask a human; the server attaches claims, reservations, recent mail."""
        return self.post("/v1/escalations", body)

    def escalations(self, status: str | None = None, mine: bool = False, limit: int | None = None,
                    key: str | None = None) -> Any:
        """`GET /v1/escalations`: all of them with the key (or as a coordinator), else your own."""
        return self.request("GET", "/v1/escalations", query={"status": status, "mine": mine, "limit": limit},
                            token=key)

    def escalation(self, ident: int, key: str | None = None) -> Any:
        """`GET /v1/escalations/<id>`, with its context."""
        return self.request("GET", f"/v1/escalations/{int(ident)}", token=key)

    def respond(self, ident: int, body: dict[str, Any], key: str) -> Any:
        """`POST /v1/escalations/<id>/respond` (project key).  Raises: Conflict: answered already."""
        return self.request("POST", f"/v1/escalations/{int(ident)}/respond", body=_compact(body), token=key)

    def webhook(self, key: str) -> Any:
        """`GET /v1/project/webhook` (project key)."""
        return self.request("GET", "/v1/project/webhook", token=key)

    def set_webhook(self, url: str | None, key: str) -> Any:
        """`PUT /v1/project/webhook` (project key); None removes it."""
        return self.request("PUT", "/v1/project/webhook", body={"url": url}, token=key)

    def test_webhook(self, key: str) -> Any:
        """`POST /v1/project/webhook/test` (project key): post a test message once, now; the outcome."""
        return self.request("POST", "/v1/project/webhook/test", body={}, token=key)

    # -- project settings --

    def project_settings(self, key: str | None = None) -> Any:
        """`GET /v1/project/settings`: ready_scope, idle_claim_minutes (any member, or the project key)."""
        return self.request("GET", "/v1/project/settings", token=key)

    def set_project_settings(self, changes: dict[str, Any], key: str | None = None) -> Any:
        """`PATCH /v1/project/settings` (a coordinator, or the project key): every setting after the change."""
        return self.request("PATCH", "/v1/project/settings", body=_compact(changes), token=key)

    # -- steering and the audit log (a coordinator's token, or `key`: the project key) --

    def assign(self, ref: str, alias: str, reason: str = "", key: str | None = None) -> Any:
        """`POST /v1/beads/<ref>/assign`.  Raises: Forbidden (not a coordinator), NotFound."""
        return self.request("POST", bead_path(ref, "assign"), body={"alias": alias, "reason": reason}, token=key)

    def unassign(self, ref: str, key: str | None = None) -> Any:
        """`DELETE /v1/beads/<ref>/assign`."""
        return self.request("DELETE", bead_path(ref, "assign"), token=key)

    def pause(self, alias: str, reason: str = "", key: str | None = None) -> Any:
        """`POST /v1/workspaces/<alias>/pause`: it claims nothing new until resumed."""
        return self.request("POST", _ref_path("/v1/workspaces", alias) + "/pause", body={"reason": reason},
                            token=key)

    def resume(self, alias: str, key: str | None = None) -> Any:
        """`DELETE /v1/workspaces/<alias>/pause`."""
        return self.request("DELETE", _ref_path("/v1/workspaces", alias) + "/pause", token=key)

    def audit(self, since: str | None = None, who: str | None = None, bead: str | None = None,
              action: str | None = None, limit: int | None = None, key: str | None = None) -> Any:
        """`GET /v1/audit`, newest first (a coordinator, or the project key)."""
        return self.request("GET", "/v1/audit", query={"since": since, "who": who, "bead": bead, "action": action,
                                                      "limit": limit}, token=key)

    # -- dashboard --

    def dashboard_link(self, key: str | None = None) -> Any:
        """`POST /v1/dashboard/link`: a one-time login link (human with the key, else read-only)."""
        if key:
            return self.request("POST", "/v1/dashboard/link", body={}, token=key)
        return self.post("/v1/dashboard/link", {})

    # -- policies --

    def policy(self, role: str | None = None, etag: str | None = None,
               key: str | None = None) -> tuple[Any, str | None]:
        """`GET /v1/policy`: (answer, ETag); the answer is None when `etag` is still current (304)."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        status, payload, answer_headers = self.exchange("GET", "/v1/policy", query={"role": role}, token=key,
                                                        headers=headers)
        tag = _header(answer_headers, "ETag")
        return (None if status == 304 else payload), (tag.strip('"') if tag else None)

    def policy_bundle(self, version: int | None = None, key: str | None = None) -> Any:
        """`GET /v1/policy/bundle`: a whole version (default: the active one), also as markdown."""
        return self.request("GET", "/v1/policy/bundle", query={"version": version}, token=key)

    def policy_history(self, key: str | None = None) -> Any:
        """`GET /v1/policy/history`: every version, newest first."""
        return self.request("GET", "/v1/policy/history", token=key)

    def set_policy(self, body: dict[str, Any], key: str) -> Any:
        """`PUT /v1/policy` (project key): `{"markdown"}` or `{"invariants", "roles"}`."""
        return self.request("PUT", "/v1/policy", body=body, token=key)

    def activate_policy(self, version: int, key: str) -> Any:
        """`POST /v1/policy/activate` (project key)."""
        return self.request("POST", "/v1/policy/activate", body={"version": version}, token=key)

    def reset_policy(self, key: str) -> Any:
        """`POST /v1/policy/reset` (project key): back to the shipped defaults."""
        return self.request("POST", "/v1/policy/reset", body={}, token=key)

    # -- reservations --

    def lock(self, paths: list[str], ttl: int | None = None, bead: str | None = None,
             reason: str | None = None) -> Any:
        """`POST /v1/locks`: reserve (or renew); advisory, so conflicts come back, never an error."""
        return self.post("/v1/locks", {"paths": paths, "ttl": ttl, "bead": bead, "reason": reason})

    def unlock(self, paths: list[str] | None) -> Any:
        """`DELETE /v1/locks`: release `paths`, or every reservation of ours when None."""
        return self.request("DELETE", "/v1/locks", body={"all": True} if paths is None else {"paths": paths})

    def locks(self, mine: bool = False) -> Any:
        """`GET /v1/locks`: the repo's live reservations (only ours with `mine`)."""
        return self.get("/v1/locks", mine=mine)

    def check_locks(self, paths: list[str]) -> Any:
        """`GET /v1/locks/check` (`POST` when the list is too long for a URL): who holds what overlaps."""
        from urllib.parse import urlencode

        query = urlencode([("path", p) for p in paths])
        if len(query) <= MAX_QUERY:
            return self.request("GET", f"/v1/locks/check?{query}")
        return self.post("/v1/locks/check", {"paths": paths})


pass_client = click.make_pass_decorator(Client)


def changed_headers(paths: list[str]) -> dict[str, str]:
    """The auto-reserve headers for `paths`: as many as fit the caps, in order, as ASCII JSON."""
    import json

    kept, size = [], 2
    for path in paths[:MAX_CHANGED_PATHS]:
        size += len(json.dumps(path)) + 1
        if size > MAX_CHANGED_BYTES:
            break
        kept.append(path)
    headers = {CHANGED_HEADER: json.dumps(kept, separators=(",", ":"))}
    if len(kept) < len(paths):
        headers[CHANGED_TRUNCATED_HEADER] = "1"
    return headers


def new_request_id() -> str:
    """A fresh request id for a write (the `Idempotency-Key` header)."""
    import uuid

    return str(uuid.uuid4())


def _retry_answer(status: int, raw: bytes) -> bool:
    """Whether an answer says "try again shortly": a proxy or server restarting, or our own request
    (same id) still being applied."""
    return status in RETRY_STATUSES or (status == 409 and b'"request_in_progress"' in raw)


def _banner_new(value: str) -> Any:
    """The `new` items of a banner header ([] when it is not the JSON object it should be)."""
    import json

    try:
        banner = json.loads(value)
    except ValueError:
        return []
    return banner.get("new") if isinstance(banner, dict) else []


def _entries(items: Any) -> list[str]:
    """The mailbox entry ids of banner items."""
    if not isinstance(items, list):
        return []
    return [i["entry"] for i in items if isinstance(i, dict) and isinstance(i.get("entry"), str)]


def _entry_order(entry: str) -> tuple[int, int]:
    """A stream id `<ms>-<seq>` as a sortable pair ((-1, -1) for anything else)."""
    head, _, tail = entry.partition("-")
    return (int(head), int(tail)) if head.isdigit() and tail.isdigit() else (-1, -1)


def _health_shaped(raw: bytes) -> bool:
    """Whether a body is the health answer of a beadwire server from before SERVER_HEADER."""
    import json

    try:
        answer = json.loads(raw)
    except ValueError:
        return False
    return isinstance(answer, dict) and HEALTH_KEYS <= set(answer)


def _checked_url(url: str) -> str:
    from urllib.parse import urlsplit

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
    from urllib.parse import quote

    return f"{prefix}/{quote(ref, safe='')}"


def _query_string(query: dict[str, Any] | None) -> str:
    from urllib.parse import urlencode

    pairs = {k: v for k, v in (query or {}).items() if v is not None and v is not False}
    return "?" + urlencode({k: (1 if v is True else v) for k, v in pairs.items()}) if pairs else ""


def _compact(body: Any) -> Any:
    """Leave out None values and empty lists, so the server applies its defaults."""
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if v is not None and v != []}


def _decode(status: int, raw: bytes) -> Any:
    """Decode a JSON answer; an error answer that is not JSON decodes to None.

    Raises:
        WireError: a success answer is not JSON.
    """
    import json

    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if status >= 400:
            return None
        raise WireError(f"the server answered HTTP {status} with something that is not JSON",
                        code="bad_answer") from None
