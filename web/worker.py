"""The gunicorn worker of the `web` process: gevent, with deadlines for slow clients.

Each connection is a greenlet, so a waiter (a `watch`, a chat wait, a `/v1/ws` socket) costs a few
kilobytes of memory instead of one of a fixed number of threads: thousands wait at once while other
requests keep being served (README, "Capacity and exposure"). gevent patches the standard library
(sockets, threads, locks) before the app is imported; the database drivers are made cooperative
too (`store.green.cooperate`). A slow client holds nothing for long: its request line and headers must
arrive within `Settings.header_timeout` seconds (also the idle limit of a kept-alive connection) and
its body within `Settings.body_timeout` (else 408). A websocket, once upgraded, has no deadline.

Used as gunicorn's `worker_class` (web/gunicorn_conf.py: the Procfile, `wire serve`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from email.utils import formatdate
from typing import Any

import gevent
from gunicorn import util
from gunicorn.http import message, wsgi
from gunicorn.workers.ggevent import GeventWorker
from werkzeug.exceptions import RequestTimeout


class Worker(GeventWorker):
    """gunicorn's gevent worker plus cooperative drivers and header and body deadlines."""

    header_timeout = body_timeout = 0
    wsgi: Any  # the app, set by gunicorn's load_wsgi
    cfg: Any  # gunicorn's settings; a `SettledConfig` once the worker runs

    def init_process(self) -> None:
        self.settle()
        super().init_process()

    def settle(self) -> None:
        """In the worker, after the fork: what it reads on every request, read once from now on."""
        # its settings are read many times, never changed
        self.cfg = SettledConfig(self.cfg)
        # gunicorn's answers read their Date through `util.http_date` (gunicorn/http/wsgi.py
        # `Response.default_headers`, as of gunicorn 27.0.1): this worker's answers take it from a cache
        util.http_date = DateHeader()
        # and whether a request's peer may set forwarding headers through `message._ip_in_allow_list`
        # (`HeaderPolicy._peer_is_trusted_proxy`, gunicorn 27.0.1): asked once per peer address
        message._ip_in_allow_list = PeerTrust(message._ip_in_allow_list)
        # and each request's `wsgi.errors` looks for the error log's streams only when written to
        # (`wsgi.base_environ` builds one per request, gunicorn 27.0.1)
        wsgi.WSGIErrorsWrapper = ErrorStream

    def patch(self) -> None:
        super().patch()  # gevent's monkey.patch_all(), before the app and its drivers are imported
        # imported only now: `store` pulls in redis-py and ssl, which must see the patched modules
        from store import green  # noqa: PLC0415
        from store.config import Settings  # noqa: PLC0415

        green.cooperate()
        settings = Settings.from_env()
        self.header_timeout, self.body_timeout = settings.header_timeout, settings.body_timeout

    def timeout_ctx(self) -> gevent.Timeout:
        # wraps the parse of each request line and headers (gunicorn's keep-alive loop): a client that
        # has not sent them in time is disconnected, however it trickles them
        return gevent.Timeout(self.header_timeout, False)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = _with_body_deadline(self.wsgi, self.body_timeout)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        # no single read of a body waits longer than its whole deadline; a websocket, once accepted,
        # idles for as long as it likes. What gunicorn reads after the app (an unread body, the next
        # request) falls under the header deadline instead.
        upgrade = _is_upgrade(req.headers)
        sock.settimeout(None if upgrade else self.body_timeout)
        # a websocket's handshake and frames go straight to the socket (simple-websocket takes it
        # from the environ); any other answer's head waits for its first body bytes (`HeldHead`)
        wire = sock if upgrade else HeldHead(sock)
        try:
            handled = super().handle_request(listener_name, req, wire, addr)
        except StopIteration:  # gunicorn closes the connection after this answer: send all of it first
            with contextlib.suppress(OSError):  # a peer that is gone: the connection closes anyway
                wire.flush()
            raise
        finally:
            sock.settimeout(None)
        wire.flush()
        return handled


class HeldHead:
    """The client socket as gunicorn's response writer uses it, sending an answer's head (status line
    and headers: gunicorn's first `sendall` of a request) together with its first body bytes: one
    system call and one TCP segment instead of two. On loopback a send costs the sender the peer's
    receive path too; this is one of four sends in a mail. Bytes go out in the order written; the
    head alone goes once the request is handled (`flush`: an answer without a body)."""

    __slots__ = ("_first", "_head", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._head = b""
        self._first = True

    def sendall(self, data: bytes) -> None:
        if self._first:
            self._first, self._head = False, bytes(data)
            return
        if self._head:
            data, self._head = self._head + data, b""
        self._write(data)

    def flush(self) -> None:
        """Send what is held (called once the request is handled, and before any other kind of send)."""
        if self._head:
            head, self._head = self._head, b""
            self._write(head)

    def _write(self, data: bytes) -> None:
        # one `send` first: an answer fits the socket's buffer, and gevent's `sendall` asks the kernel
        # for the buffer's size (a `getsockopt` call) every time; what did not fit goes by `sendall`
        sent = self._sock.send(data) if data else 0
        if sent < len(data):
            self._sock.sendall(memoryview(data)[sent:])

    def send(self, data: bytes, *args: Any) -> int:
        self.flush()
        return int(self._sock.send(data, *args))

    def sendfile(self, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return self._sock.sendfile(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # everything else is the socket's own (fileno, family, ...)
        return getattr(self._sock, name)


class DateHeader:
    """gunicorn's `util.http_date` (27.0.1), with the value for "now" formatted once a second.

    gunicorn formats the Date of every answer with `email.utils.formatdate` (~2 us); the header names
    whole seconds, so each answer of a second gets the same text (the second is read per call: the
    Date of an answer is never older than the second it is sent in)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = (-1, "")  # (second, its Date): one tuple, replaced whole, so never half updated

    def __call__(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return formatdate(timestamp, localtime=False, usegmt=True)
        second = int(time.time())
        last = self._last
        if last[0] != second:
            last = self._last = (second, formatdate(second, localtime=False, usegmt=True))
        return last[1]


class PeerTrust:
    """gunicorn's `http.message._ip_in_allow_list` (27.0.1), its answer kept per peer address.

    For every request gunicorn asks whether the peer may set forwarding headers (`forwarded_allow_ips`):
    it parses the peer's address and tests it against each allowed network (~2.4 us), though the answer
    depends only on the address and the allow list, which a worker never changes. An answer is kept
    with the very list objects it was given and used only for those (a changed list is asked anew)."""

    #: Peer addresses remembered at most; past that the record starts over (a public server sees many).
    LIMIT = 4096

    def __init__(self, check: Any) -> None:
        self._check = check
        self._known: dict[str, tuple[Any, Any, bool]] = {}

    def __call__(self, ip: str, allow_list: Any, networks: Any) -> bool:
        known = self._known.get(ip)
        if known is not None and known[0] is allow_list and known[1] is networks:
            return known[2]
        answer = bool(self._check(ip, allow_list, networks))
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        self._known[ip] = (allow_list, networks, answer)
        return answer


class ErrorStream(wsgi.WSGIErrorsWrapper):
    """A request's `wsgi.errors`: gunicorn's (27.0.1), finding the error log's streams when written to.

    gunicorn builds one for every request and finds the streams right away, though hardly a request
    writes to it: a logger lookup under the logging module's lock and a walk over the handlers, ~2 us.
    A write goes to the same streams (those of the handlers of the moment: after a log reopen, the
    reopened files)."""

    def __init__(self, cfg: Any) -> None:  # gunicorn's does not call RawIOBase's __init__ either
        self._errorlog = cfg.errorlog

    @property
    def streams(self) -> list[Any]:  # gunicorn's __init__, run when written to
        handlers = logging.getLogger("gunicorn.error").handlers
        streams: list[Any] = []
        if self._errorlog == "-":
            streams.append(sys.stderr)
            handlers = handlers[1:]
        streams.extend(h.stream for h in handlers if hasattr(h, "stream"))
        return streams


class SettledConfig:
    """gunicorn's settings as one worker reads them: each looked up through gunicorn once, then kept as
    a plain attribute. gunicorn's `Config` resolves a setting through two calls on every read, ~25 reads
    a request; a worker's settings never change after its fork (a reload starts new workers)."""

    def __init__(self, cfg: Any) -> None:
        self._cfg = cfg

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._cfg, name)
        setattr(self, name, value)  # the next read finds it without calling __getattr__
        return value


def _is_upgrade(headers: list[tuple[str, str]]) -> bool:
    return any(name == "UPGRADE" and value.strip().lower() == "websocket" for name, value in headers)


def _with_body_deadline(app: Any, seconds: float) -> Any:
    """The WSGI app, reading each request's body (`wsgi.input`) under a deadline of `seconds`."""

    def app_with_deadline(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.input"] = DeadlineBody(environ["wsgi.input"], time.monotonic() + seconds)
        return app(environ, start_response)

    return app_with_deadline


class DeadlineBody:
    """A request body (gunicorn's `wsgi.input`) that must be read completely before a deadline."""

    def __init__(self, body: Any, deadline: float) -> None:
        self.body, self.deadline = body, deadline

    def _call(self, method: str, *args: Any) -> Any:
        if time.monotonic() > self.deadline:
            raise RequestTimeout("the request body did not arrive in time")
        try:
            return getattr(self.body, method)(*args)
        except TimeoutError:
            raise RequestTimeout("the request body did not arrive in time") from None

    def read(self, size: int | None = None) -> bytes:
        return self._call("read", size)

    def readline(self, size: int | None = None) -> bytes:
        return self._call("readline", size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return self._call("readlines", hint)

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line
