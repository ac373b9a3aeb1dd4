"""The soak test's HTTP side (bench/soak.py): one keep-alive connection per agent, every answer counted
in `Stats`; and the /proc helpers that find the stack's processes."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

#: Seconds a keep-alive connection may idle before we open a new one (never race gunicorn's close).
KEEPALIVE_S = 1.0


# ------------------------------------------------------------------------------------------ /proc


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = [int(c) for t in os.listdir(f"/proc/{parent}/task")
                        for c in Path(f"/proc/{parent}/task/{t}/children").read_text().split()]
        except OSError:
            continue
        found += children
        todo += children
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


# ------------------------------------------------------------------------------------------- client


class Answer:
    __slots__ = ("banner", "json", "status")

    def __init__(self, status: int, body: Any, banner: dict | None) -> None:
        self.status, self.json, self.banner = status, body, banner


class Client:
    """One keep-alive http.client connection (one agent), recording every call in `Stats`."""

    def __init__(self, url: str, token: str, stats: Stats, timeout: float = 60) -> None:
        parsed = urlparse(url)
        self.host, self.port, self.token = parsed.hostname or "", parsed.port, token
        self.stats, self.timeout = stats, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0.0

    def call(self, op: str, method: str, path: str, body: dict | None = None, **query: Any) -> Answer | None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        target = "/v1" + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            reused = self.conn is not None and time.monotonic() - self.used <= KEEPALIVE_S
            if not reused:
                self.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            started = time.perf_counter()
            try:
                self.conn.request(method, target, body=data, headers=headers)  # type: ignore[union-attr]
                response = self.conn.getresponse()  # type: ignore[union-attr]
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                # The keep-alive race: the server closed a connection idle for its keep-alive
                # time just as we reused it (a stalled client thread on a busy machine), so the
                # request was never read. Any HTTP client retries that once, on a new connection.
                if reused and attempt == 1:
                    self.stats.keepalive_retry()
                    continue
                self.stats.exception(op, exc)
                return None
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                self.stats.exception(op, exc)
                return None
        self.used = time.monotonic()
        elapsed = time.perf_counter() - started
        answer = json.loads(raw) if raw else None
        banner = response.getheader("X-Wire-Banner")
        self.stats.record(op, response.status, elapsed, answer)
        return Answer(response.status, answer, json.loads(banner) if banner else None)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Stats:
    """Every answer by operation; the unexpected ones kept for the report."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.errors: list[str] = []
        self.exceptions: list[str] = []
        self.keepalive_retries = 0

    def keepalive_retry(self) -> None:
        with self.lock:
            self.keepalive_retries += 1

    def record(self, op: str, status: int, elapsed: float, data: Any) -> None:
        with self.lock:
            self.latency[op].append(elapsed)
            self.status[op][status] += 1
            if status >= 300 and not (status == 409 and op == "claim") and len(self.errors) < 200:
                self.errors.append(f"{op} {status} {str(data)[:300]}")

    def exception(self, op: str, exc: BaseException) -> None:
        with self.lock:
            self.exceptions.append(f"{op}: {exc!r}")

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.status.values())

    def unexpected(self) -> int:
        bad = sum(n for op, c in self.status.items() for s, n in c.items()
                  if s >= 300 and not (s == 409 and op == "claim"))
        return bad + len(self.exceptions)
