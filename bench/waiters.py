"""Idle waiters: how many one `wire serve` holds, and what health and claims do meanwhile (not a test).

    python3 -m bench.waiters [--waiters 5000] [--projects 10] [--seconds 15] [--serve-arg=--workers=2 ...]

Starts its own `wire serve` on a free loopback port, registers `--projects` projects with enough
workspaces that no credential passes the default waiter cap, syncs beads to claim, and measures
`GET /v1/health` (sequential probes, p50/p99) and claims on distinct beads (c=8, ops/s) three times:
with no waiter, then with `--waiters` idle waiters held open at once (a third each websockets on
`/v1/ws`, `GET /v1/watch?timeout=30` long polls and `GET /v1/chat/wait?timeout=30` long polls, re-sent
as each slice ends), health alone and health during the claims. It then counts the waiters still held,
every answer they got (200 per slice, or 429/5xx) and the Redis connections, and prints one markdown
table (also saved in bench/out/waiters-<timestamp>.{md,json}).

The waiters are plain asyncio sockets in this process (a few KiB each); the probes and the claim load
use bench.py's keep-alive `http.client` connections. Loopback only. With `--serve-arg` the server's
command line can be changed, e.g. `--serve-arg=--threads=2500` to measure the gthread server of
earlier versions (run with PYTHONPATH pointing at such a checkout).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import re
import resource
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import Conn, CpuSampler, pct, run_load
from bench.memory import process_tree, stack_rss
from bench.workloads import register, sync_beads
from tests import servers

ROOT = Path(__file__).resolve().parent.parent


HOST = "127.0.0.1"
#: Seconds each long-poll slice asks the server to hold (the longest it allows).
SLICE = 30
#: Waiters each workspace holds (the default cap per credential is 16).
PER_WORKSPACE = 3
#: Waiters opened per batch while building up (the listen backlog is 2048).
BATCH = 250


def start(tmp: str, serve_args: list[str]) -> Any:
    """`wire serve` on a free port with `serve_args`; returns a tests.servers.Stack."""
    data_dir = Path(tempfile.mkdtemp(prefix="stack-", dir=tmp))
    port = servers.free_port()
    code = "from cli.serve import serve_command; serve_command(prog_name='wire serve')"
    args = [sys.executable, "-c", code, "--host", HOST, "--port", str(port), "--data-dir", str(data_dir),
            *serve_args]
    log = data_dir / "serve.log"
    env = servers._child_env({"BEADWIRE_RATE_IP": "0"})  # 1,000s of inits from one address
    proc = servers._spawn(args, log, signal.SIGTERM, env=env)
    stack = servers.Stack(proc, f"http://{HOST}:{port}", data_dir, log)
    servers._running.append(stack)
    servers.wait_until(lambda: servers.healthy(stack.url), proc, "wire serve", log)
    return stack


def redis_clients(stack: Any) -> int | None:
    """Clients connected to the stack's Redis (INFO clients), or None when it cannot be asked."""
    found = re.search(r"redis://(?::\*\*\*@)?127\.0\.0\.1:(\d+)/", stack.log.read_text(errors="replace"))
    if not found:
        return None
    password_file = stack.data_dir / "redis.password"
    auth = ""
    if password_file.exists():
        pw = password_file.read_text().strip()
        auth = f"*2\r\n$4\r\nAUTH\r\n${len(pw)}\r\n{pw}\r\n"
    with socket.create_connection((HOST, int(found.group(1))), timeout=5) as sock:
        sock.sendall((auth + "INFO clients\r\n").encode())
        data = b""
        while b"connected_clients" not in data or not data.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    match = re.search(rb"connected_clients:(\d+)", data)
    return int(match.group(1)) if match else None


class Waiters:
    """Idle waiters held open by an asyncio loop in a thread of this process."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.held: collections.Counter[str] = collections.Counter()  # kind -> waiting right now
        self.answers: collections.Counter[str] = collections.Counter()  # "kind status" -> count
        self.errors: list[str] = []
        self.tasks: set[asyncio.Task] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def open(self, specs: list[tuple[str, str, str]]) -> int:
        """Open waiters (kind, path, token) in batches; returns once every one is waiting, or after a
        minute for those the server never takes on (a server out of threads); returns how many those were."""
        stuck = 0
        for i in range(0, len(specs), BATCH):
            batch = specs[i:i + BATCH]
            futures = [asyncio.run_coroutine_threadsafe(self._start(*spec), self.loop) for spec in batch]
            for future in futures:
                try:
                    future.result(70)
                except TimeoutError:
                    stuck += 1
        return stuck

    async def _start(self, kind: str, path: str, token: str) -> None:
        started = asyncio.get_running_loop().create_future()
        task = asyncio.get_running_loop().create_task(self._hold(kind, path, token, started))
        self.tasks.add(task)  # the loop keeps only a weak reference: a task nobody holds may vanish
        await asyncio.wait_for(started, 60)

    async def _hold(self, kind: str, path: str, token: str, started: asyncio.Future) -> None:
        try:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            if kind == "ws":
                await self._websocket(reader, writer, path, token, started)
            else:
                await self._long_poll(reader, writer, kind, path, token, started)
        except Exception as exc:  # noqa: BLE001 - counted, not raised
            self.errors.append(f"{kind}: {exc!r}")
            if not started.done():
                started.set_result(False)

    async def _long_poll(self, reader, writer, kind: str, path: str, token: str, started) -> None:
        # the first slice ends at a random point of the first 30 s, so that the waiters' slices end
        # spread out as those of agents that started waiting at different times would, not all at once
        first = path.replace(f"timeout={SLICE}", f"timeout={random.randint(1, SLICE)}")
        while not self.stop.is_set():
            request = (f"GET {first if first else path} HTTP/1.1\r\nHost: {HOST}\r\n"
                       f"Authorization: Bearer {token}\r\n\r\n").encode()
            first = ""
            writer.write(request)
            await writer.drain()
            self.held[kind] += 1
            if not started.done():
                # the request is in: give it a moment to reach the server's wait (no answer comes before)
                asyncio.get_running_loop().call_later(
                    0.05, lambda: started.done() or started.set_result(True))
            try:
                status = await _read_answer(reader, self.errors)
            finally:
                self.held[kind] -= 1
            self.answers[f"{kind} {status}"] += 1
            if status != 200:
                await asyncio.sleep(1.0)
        writer.close()

    async def _websocket(self, reader, writer, path: str, token: str, started) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        await writer.drain()
        status, length = int((await reader.readline()).split()[1]), 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.answers[f"ws {status}"] += 1
        started.set_result(status == 101)
        if status != 101:
            self.errors.append(f"ws {status}: {(await reader.readexactly(length))[:200]!r}")
            writer.close()
            return
        self.held["ws"] += 1
        try:
            while not self.stop.is_set():  # event frames are read and dropped; pings are answered
                opcode, payload = await _read_frame(reader)
                if opcode == 0x9:
                    writer.write(_masked_frame(0xA, payload))
                elif opcode == 0x8:
                    self.errors.append(f"ws: closed by the server: {payload[:2].hex()} {payload[2:80]!r}")
                    return
        except asyncio.IncompleteReadError:
            self.errors.append("ws: connection dropped")
        finally:
            self.held["ws"] -= 1

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One websocket frame from the server (unmasked): its opcode and payload."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return head[0] & 0x0F, await reader.readexactly(length)


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask), payload shorter than 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def _read_answer(reader: asyncio.StreamReader, errors: list[str] | None = None) -> int:
    """One HTTP/1.1 answer: its status; the body (Content-Length) is read, and kept in `errors` when
    the status is not 200."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    if status != 200 and errors is not None:
        errors.append(f"{status}: {body[:200]!r}")
    return status


def web_cpu(root_pid: int, seconds: float) -> float:
    """CPU the gunicorn processes used over `seconds` of doing nothing else, in % of one core."""
    pids = [p for p, cmd in process_tree(root_pid).items() if "gunicorn" in cmd]

    def ticks() -> int:
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total

    before = ticks()
    time.sleep(seconds)
    return round((ticks() - before) / os.sysconf("SC_CLK_TCK") / seconds * 100, 1)


def _probe_conn(port: int) -> Any:
    """A keep-alive connection whose calls give up after 5 s (a frozen server is a failure, not a hang)."""
    conn = Conn(port)
    conn.conn.timeout = 5
    return conn


def probe_health(port: int, seconds: float, every: float = 0.02) -> dict:
    """Sequential `GET /v1/health` for `seconds`: count, failures, median and p99 in ms."""
    conn, lats = _probe_conn(port), []
    failures: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t = time.perf_counter()
        try:
            status, _ = conn.call("GET", "/v1/health")
        except Exception as exc:  # noqa: BLE001 - a timeout is what this measures
            failures[type(exc).__name__] += 1
            conn.close()
            conn = _probe_conn(port)
            continue
        lats.append((time.perf_counter() - t) * 1000)
        if status != 200:
            failures[str(status)] += 1
        time.sleep(every)
    conn.close()
    return {"n": len(lats), "failures": dict(failures),
            "median_ms": round(statistics.median(lats), 2) if lats else None,
            "p99_ms": round(pct(lats, 99), 2) if lats else None,
            "max_ms": round(max(lats), 1) if lats else None}


def claims(port: int, tokens: list[str], beads: list[str], seconds: float) -> dict:
    """Claims on distinct beads at c=8 for `seconds` (or until the beads run out)."""
    taken = iter(beads)
    lock = threading.Lock()

    def op(c: Any, tid: int, i: int) -> int:
        with lock:
            bead = next(taken)
        return c.call("POST", f"/v1/beads/{bead}/claim", {}, token=tokens[tid])[0]

    return run_load(port, len(beads), 8, seconds, op)


def measure(port: int, tokens: list[str], beads: list[str], seconds: float, sampler: Any) -> dict:
    """Health alone, then claims with health probed alongside; with the CPU other processes of the
    machine took meanwhile (% of one core: bench.py's sampler)."""
    t0 = time.monotonic()
    alone = probe_health(port, seconds)
    if alone["n"] == 0:  # a frozen server: no claim load on top (its threads would only hang)
        return {"health": alone, "claims": {"ops_s": None, "statuses": "not run: health never answered"},
                "health_during_claims": {},
                "other_cpu_pct": [sampler.foreign_pct(t0, time.monotonic()), None]}
    during: dict = {}
    prober = threading.Thread(target=lambda: during.update(probe_health(port, seconds)), daemon=True)
    t1 = time.monotonic()
    prober.start()
    load = claims(port, tokens, beads, seconds)
    prober.join(seconds + 60)
    return {"health": alone, "claims": load, "health_during_claims": during,
            "other_cpu_pct": [sampler.foreign_pct(t0, t1), sampler.foreign_pct(t1, time.monotonic())]}


def waiter_specs(projects: list[dict], n: int) -> list[tuple[str, str, str]]:
    """`n` (kind, path, token): websockets, watches and chat waits in turn, spread over workspaces."""
    kinds = ["ws", "watch", "chat"]
    slots = [(p, i) for p in projects for i in range(len(p["tokens"])) for _ in range(PER_WORKSPACE)]
    specs = []
    for k, (project, i) in enumerate(slots[:n]):
        kind, token = kinds[k % 3], project["tokens"][i]
        partner = project["aliases"][(i + 1) % len(project["aliases"])]
        path = {"ws": "/v1/ws", "watch": f"/v1/watch?timeout={SLICE}",
                "chat": f"/v1/chat/wait?with={partner}&timeout={SLICE}"}[kind]
        specs.append((kind, path, token))
    return specs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--waiters", type=int, default=5000)
    ap.add_argument("--projects", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each measurement")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra `wire serve` argument (repeatable)")
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_project = -(-args.waiters // (args.projects * PER_WORKSPACE)) + 1
    with tempfile.TemporaryDirectory(prefix="bench-waiters-") as tmp:
        stack = start(tmp, [a for arg in args.serve_arg for a in arg.split("=", 1)])
        port = int(stack.url.rsplit(":", 1)[1])
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        result: dict[str, Any] = {"args": vars(args), "started": started}
        try:
            result.update(run(stack, port, args, per_project))
        finally:
            stack.stop()
    text = report(result)
    print(text)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"waiters-{stamp}.md").write_text(text + "\n")
    (out / f"waiters-{stamp}.json").write_text(json.dumps(result, indent=1))
    return 0


def run(stack: Any, port: int, args: argparse.Namespace, per_project: int) -> dict:
    t0 = time.monotonic()
    projects = []
    for p in range(args.projects):
        aliases = [f"w{p:02d}x{i:04d}" for i in range(per_project)]
        _, tokens = register(port, f"wait{p:02d}", aliases, conc=8)
        projects.append({"aliases": aliases, "tokens": tokens})
    workers = [f"c{i}" for i in range(8)]
    _, claim_tokens = register(port, "claims", workers, conc=4)
    beads = [f"bd-{i:05d}" for i in range(6000)]
    for chunk in range(0, len(beads), 1000):
        sync_beads(port, claim_tokens[0], beads[chunk:chunk + 1000], "claim me")
    print(f"[waiters] setup {time.monotonic() - t0:.1f} s", file=sys.stderr)
    out: dict[str, Any] = {"web_cpu_idle": web_cpu(stack.pid, 10)}
    sampler = CpuSampler().start()
    out["idle"] = measure(port, claim_tokens, beads[:3000], args.seconds, sampler)
    print(f"[waiters] no waiters: {out['idle']}", file=sys.stderr)
    out["rss_before"] = stack_rss(stack.pid)
    out["redis_clients_before"] = redis_clients(stack)
    waiters = Waiters(port)
    t1 = time.monotonic()
    out["never_started"] = waiters.open(waiter_specs(projects, args.waiters))
    out["open_s"] = round(time.monotonic() - t1, 1)
    out["held_after_open"] = dict(waiters.held)
    print(f"[waiters] opened in {out['open_s']} s: {dict(waiters.held)} errors {waiters.errors[:3]}",
          file=sys.stderr)
    out["web_cpu_waiting"] = web_cpu(stack.pid, 10)
    print(f"[waiters] web CPU with the waiters idle: {out['web_cpu_waiting']} %", file=sys.stderr)
    out["busy"] = measure(port, claim_tokens, beads[3000:], args.seconds, sampler)
    out["held_at_end"] = dict(waiters.held)
    out["answers"] = dict(waiters.answers)
    out["errors"] = len(waiters.errors), waiters.errors[:5]
    out["rss_with_waiters"] = stack_rss(stack.pid)
    out["redis_clients_with_waiters"] = redis_clients(stack)
    print(f"[waiters] with waiters: {out['busy']}", file=sys.stderr)
    waiters.close()
    sampler.stop()
    return out


def report(r: dict) -> str:
    a = r["args"]

    def row(label: str, m: dict) -> str:
        h, c, hd = m["health"], m["claims"], m["health_during_claims"]
        other = " / ".join(str(x) for x in m["other_cpu_pct"])
        return (f"| {label} | {h['median_ms']} / {h['p99_ms']} | {sum(h['failures'].values())} | "
                f"{c['ops_s']} | {c['statuses']} | {hd.get('median_ms')} / {hd.get('p99_ms')} | "
                f"{sum(hd.get('failures', {}).values())} "
                f"| {other} |")

    held = sum(r["held_at_end"].values())
    lines = [f"waiters bench {r['started']} · {a['waiters']} waiters over {a['projects']} projects · "
             f"serve args {a['serve_arg'] or 'default'} · {a['seconds']} s per measurement",
             "",
             "| waiters held | health median / p99 ms | health failures | claims c=8 ops/s | claim answers | "
             "health during claims median / p99 ms | failures | other procs' CPU % (health / claims) |",
             "|---|---|---|---|---|---|---|---|",
             row("0", r["idle"]),
             row(f"{held} ({r['held_at_end']})", r["busy"]),
             "",
             f"* opened in {r['open_s']} s ({r['never_started']} never got going within 70 s); "
             f"held right after opening {r['held_after_open']}, at the end "
             f"{r['held_at_end']}; waiter answers {r['answers']}; client errors {r['errors'][0]} "
             f"{r['errors'][1]}",
             f"* CPU of the web processes (gunicorn) over 10 s with nothing to do: {r['web_cpu_idle']} % "
             f"of a core without waiters, {r['web_cpu_waiting']} % with them",
             f"* Redis connections: {r['redis_clients_before']} before, "
             f"{r['redis_clients_with_waiters']} with the waiters; RSS MiB before {r['rss_before']}, "
             f"with the waiters {r['rss_with_waiters']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
