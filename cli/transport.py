"""The CLI's HTTP transport: one request on a plain stdlib socket, opened on the first request.

Agents run `wire` hundreds of times an hour, so loading this module and making a call must stay
cheap: no `http.client` (it pulls in `email` and `ssl`), and the stdlib modules a call needs are
imported inside the functions that need them (start-up time: `wire --help` imports this module).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from cli.errors import ServerUnreachable, WireError

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
#: Extra seconds the HTTP read of a long-poll slice is allowed beyond the slice itself.
SLICE_GRACE = 10.0
#: Response header carrying what needs the caller (docs/API.md, "Messaging").
BANNER_HEADER = "X-Wire-Banner"
#: Request header confirming the newest mailbox entry (`entry` of a banner item) this worktree has
#: shown; the server shows every entry after it until a call confirms it (docs/API.md, "Messaging").
SEEN_HEADER = "X-Wire-Seen"
#: Calls that wait rather than act: they keep presence but are no command (idle with claim).
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
#: The health answer of a server from before SERVER_HEADER (accepted too).
HEALTH_KEYS = frozenset({"status", "redis", "database"})
#: Request header carrying the server's admin token (creating a project on an exposed server).
ADMIN_TOKEN_HEADER = "X-Wire-Admin-Token"
#: Request header carrying a write's request id: the server applies it at most once (docs/API.md).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Request header of a claim asking for the bead's beads-file record in the answer (write-through).
RECORDS_HEADER = "X-Wire-Records"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


def http_transport(method: str, url: str, body: bytes | None, headers: dict[str, str],
                   timeout: float) -> tuple[int, bytes, Mapping[str, str]]:
    """Send one HTTP/1.1 request on a fresh socket and return (status, raw body, response headers).

    A plain socket rather than `http.client`: that module pulls in `email` and `ssl`, a fifth of a
    one-shot command's start-up (bench/cli_startup.py). `ssl` is imported only for an https URL, and
    `socket` with it: for plain HTTP the C module `_socket` does (see `_connect`).

    Raises:
        ServerUnreachable: connection refused, DNS failure, timeout, dropped connection or a
            malformed answer.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    try:
        sock = _connect(_ascii_host(host), port, timeout)
        try:
            sock = _tls(sock, host, timeout) if https else sock
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            sock.sendall(_request_bytes(method, target, _host_header(host, parts.port), body, headers))
            return _read_answer(_Answer(sock), method)
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


def _ascii_host(host: str) -> Any:
    """An ASCII host as bytes: `getaddrinfo` would otherwise load the idna codec for every call."""
    return host.encode("ascii") if host.isascii() else host


def _host_header(host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _connect(host: Any, port: int, timeout: float) -> Any:
    """A connected socket: each address of `host` tried in turn, the last failure raised (what
    `socket.create_connection` does). The C module `_socket`, not `socket`: that one builds its enums
    of every address family and flag on import, a few ms of each command.

    Raises:
        OSError: no address could be connected to (or none found).
    """
    import _socket  # noqa: PLC0415 - start-up time: `--help` loads us

    failure: OSError = OSError("getaddrinfo returns an empty list")
    for family, kind, proto, _, address in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock
    raise failure


class _Answer:
    """The bytes of an answer, read from the socket as they are needed (what `socket.makefile("rb")`
    gives, without the `socket` module)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.data = bytearray()

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.data += chunk
        return bool(chunk)

    def _take(self, size: int) -> bytes:
        taken = bytes(self.data[:size])
        del self.data[:size]
        return taken

    def readline(self, limit: int) -> bytes:
        """Up to and with the next newline, or `limit` bytes, or what is left."""
        while (end := self.data.find(b"\n", 0, limit)) < 0 and len(self.data) < limit and self._more():
            pass
        return self._take(end + 1 if end >= 0 else limit)

    def read(self, size: int = -1) -> bytes:
        """`size` bytes (fewer when the answer ends first); all the rest with -1."""
        while (size < 0 or len(self.data) < size) and self._more():
            pass
        return self._take(len(self.data) if size < 0 else size)


def _tls(sock: Any, host: str, timeout: float) -> Any:
    import socket  # noqa: PLC0415 - only for an https URL (start-up time), as `ssl` needs
    import ssl  # noqa: PLC0415 - only for an https URL (start-up time)

    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    wrapped = socket.socket(fileno=sock.detach())  # `ssl` wraps a `socket.socket`
    try:
        wrapped.settimeout(timeout)
        return context.wrap_socket(wrapped, server_hostname=host)
    except BaseException:
        wrapped.close()  # a failed handshake leaves it ours to close
        raise


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


def _read_answer(answer: _Answer, method: str) -> tuple[int, bytes, dict[str, str]]:
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
    if "chunked" in (header(headers, "Transfer-Encoding") or "").lower():
        return status, _chunked(answer), headers
    length = header(headers, "Content-Length")
    if length is None:
        return status, answer.read(), headers  # until the server closes (we sent Connection: close)
    return status, _exactly(answer, _number(length, 10)), headers


def _line(answer: _Answer) -> bytes:
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


def _headers(answer: _Answer) -> dict[str, str]:
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


def _exactly(answer: _Answer, size: int) -> bytes:
    data = answer.read(size)
    if len(data) < size:
        raise BadAnswer(f"the answer ended after {len(data)} of {size} bytes")
    return data


def _chunked(answer: _Answer) -> bytes:
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


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by case-insensitive name."""
    lower = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lower), None)


def changed_headers(paths: list[str]) -> dict[str, str]:
    """The auto-reserve headers for `paths`: as many as fit the caps, in order, as ASCII JSON."""
    import json  # noqa: PLC0415 - only once a request is made: `wire --help` never needs it (start-up time)

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
    return str(uuid.uuid4())


def retry_answer(status: int, raw: bytes) -> bool:
    """Whether an answer says "try again shortly": a proxy or server restarting, or our own request
    (same id) still being applied."""
    return status in RETRY_STATUSES or (status == 409 and b'"request_in_progress"' in raw)


def health_shaped(raw: bytes) -> bool:
    """Whether a body is the health answer of a beadwire server from before SERVER_HEADER."""
    import json  # noqa: PLC0415 - only once a request is made: `wire --help` never needs it (start-up time)

    try:
        answer = json.loads(raw)
    except ValueError:
        return False
    return isinstance(answer, dict) and set(answer) >= HEALTH_KEYS


def query_string(query: dict[str, Any] | None) -> str:
    """`?a=1&b=x` from the values that are not None or False (True is sent as 1); "" for none."""
    pairs = {k: v for k, v in (query or {}).items() if v is not None and v is not False}
    return "?" + urlencode({k: (1 if v is True else v) for k, v in pairs.items()}) if pairs else ""


def compact(body: Any) -> Any:
    """Leave out None values and empty lists, so the server applies its defaults."""
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if v is not None and v != []}


def decode(status: int, raw: bytes) -> Any:
    """Decode a JSON answer; an error answer that is not JSON decodes to None.

    Raises:
        WireError: a success answer is not JSON.
    """
    import json  # noqa: PLC0415 - only once a request is made: `wire --help` never needs it (start-up time)

    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if status >= 400:
            return None
        raise WireError(f"the server answered HTTP {status} with something that is not JSON",
                        code="bad_answer") from None


def banner_new(value: str) -> Any:
    """The `new` items of a banner header ([] when it is not the JSON object it should be)."""
    import json  # noqa: PLC0415 - start-up time: only with a banner

    try:
        banner = json.loads(value)
    except ValueError:
        return []
    return banner.get("new") if isinstance(banner, dict) else []


def entries_of(items: Any) -> list[str]:
    """The mailbox entry ids of banner items."""
    if not isinstance(items, list):
        return []
    return [i["entry"] for i in items if isinstance(i, dict) and isinstance(i.get("entry"), str)]


def entry_order(entry: str) -> tuple[int, int]:
    """A stream id `<ms>-<seq>` as a sortable pair ((-1, -1) for anything else)."""
    head, _, tail = entry.partition("-")
    return (int(head), int(tail)) if head.isdigit() and tail.isdigit() else (-1, -1)

