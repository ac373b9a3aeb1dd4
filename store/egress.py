"""Outbound HTTP to a URL a user gave us (the escalation webhook), without becoming a proxy into our
own network (SSRF).

The host is resolved here and every address is judged (`refusal`): loopback, private, shared,
link-local, multicast and reserved ones are refused, also when written in odd forms (`2130706433`,
`0x7f000001`, `127.1`, `[::ffff:127.0.0.1]`, 6to4 and NAT64 addresses wrapping them). The
connection goes to the vetted address itself (no second lookup a rebinding DNS could answer
differently), and the peer address of the open socket is judged once more. Redirects are never
followed; only http and https. `allow_private` (BEADWIRE_WEBHOOK_ALLOW_PRIVATE) admits loopback,
private and shared addresses for a chat bridge on the LAN; link-local (cloud metadata at
169.254.169.254), multicast and reserved addresses stay refused.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Networks Python's flags do not single out: "this network" (0.0.0.0/8 reaches the local host on
#: Linux), carrier-grade NAT shared space, and the NAT64 prefix that wraps IPv4 addresses.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
SCHEMES = ("http", "https")


class EgressRefused(Exception):
    """Raised when a URL may not be fetched: its scheme, or every address its host resolves to."""


@dataclass(frozen=True)
class Answer:
    """What the receiver answered (the body is not kept)."""

    status: int
    reason: str


def check_url(url: str) -> SplitResult:
    """The parts of an http(s) URL with a host, no credentials and a valid port.

    Raises:
        EgressRefused: another scheme, no host, `user:pass@`, a bad port.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise EgressRefused("only http:// and https:// URLs with a host are allowed")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("a URL with a user name or password (user:pass@host) is not allowed")
    try:
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        raise EgressRefused("the URL's port is not a number from 0 to 65535") from None
    return parts


def refusal(ip: IPAddress, allow_private: bool = False) -> str | None:
    """Why `ip` may not be connected to (`loopback`, `private`, ...), or None when it may."""
    inner = _wrapped_v4(ip)
    if inner is not None:
        return refusal(inner, allow_private)
    if ip.is_multicast or ip.is_unspecified or ip.is_link_local:
        return "multicast" if ip.is_multicast else "unspecified" if ip.is_unspecified else "link-local"
    if ip.is_loopback:
        return None if allow_private else "loopback"
    if ip in _THIS_NETWORK or ip.is_reserved:
        return "reserved"
    if ip.is_private or ip in _SHARED:
        return None if allow_private else "private"
    return None if ip.is_global else "reserved"


def _wrapped_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), if any."""
    if ip.version != 6:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None or ip.sixtofour is not None:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]  # the client end; its server is public by definition
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (IP literals in any form resolve to themselves).

    Raises:
        OSError: the name does not resolve.
    """
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found))


def allowed(addresses: list[IPAddress], host: str, allow_private: bool) -> list[IPAddress]:
    """The addresses that may be connected to.

    Raises:
        EgressRefused: none may (the message names what the host resolved to).
    """
    ok = [ip for ip in addresses if refusal(ip, allow_private) is None]
    if not ok:
        why = ", ".join(f"{ip} ({refusal(ip, allow_private)})" for ip in addresses[:4])
        hint = ("" if allow_private
                else "; BEADWIRE_WEBHOOK_ALLOW_PRIVATE=1 admits a receiver on your own network")
        raise EgressRefused(f"{host} resolves to {why}: not a public address{hint}")
    return ok


def post_json(url: str, body: bytes, timeout: float, allow_private: bool = False) -> Answer:
    """POST `body` as JSON to `url`, connected only to a vetted address; a redirect is an answer like
    any other (never followed).

    Raises:
        EgressRefused: the URL or every address of its host is refused.
        OSError, http.client.HTTPException: the receiver could not be reached or answered garbage.
    """
    parts = check_url(url)
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    host = parts.hostname or ""
    candidates = allowed(resolve(host, port), host, allow_private)
    conn = _connection(https, host, port, timeout, candidates, allow_private)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body, {"Content-Type": "application/json", "User-Agent": "beadwire"})
        response = conn.getresponse()
        response.read(64 * 1024)  # drain a little of it; the body is not needed
        return Answer(response.status, response.reason)
    finally:
        conn.close()


def _connection(https: bool, host: str, port: int, timeout: float, candidates: list[IPAddress],
                allow_private: bool) -> http.client.HTTPConnection:
    cls = _PinnedHTTPS if https else _PinnedHTTP
    return cls(host, port, timeout, candidates, allow_private)


class _PinnedHTTP(http.client.HTTPConnection):
    """An http.client connection whose socket goes to a vetted address; the Host header stays `host`."""

    def __init__(self, host: str, port: int, timeout: float, candidates: list[IPAddress],
                 allow_private: bool) -> None:
        super().__init__(host, port, timeout=timeout)
        self.candidates, self.allow_private, self.seconds = candidates, allow_private, timeout

    def connect(self) -> None:
        self.sock = _open(self.candidates, self.port, self.seconds, self.allow_private)


class _PinnedHTTPS(_PinnedHTTP):
    """The same over TLS, verified against `host` (not the address)."""

    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        sock = _open(self.candidates, self.port, self.seconds, self.allow_private)
        self.sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)


def _open(candidates: list[IPAddress], port: int, timeout: float, allow_private: bool) -> socket.socket:
    """A TCP socket to the first candidate that answers, judged again by its peer address.

    Raises:
        OSError: none could be reached.
        EgressRefused: the peer is not an allowed address (cannot happen unless the kernel redirects).
    """
    error: OSError | None = None
    for ip in candidates:
        try:
            sock = socket.create_connection((str(ip), port), timeout=timeout)
        except OSError as exc:
            error = exc
            continue
        peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
        if refusal(peer, allow_private) is not None:
            sock.close()
            raise EgressRefused(f"connected to {peer} ({refusal(peer, allow_private)}): refused")
        return sock
    raise error or OSError("no address to connect to")
