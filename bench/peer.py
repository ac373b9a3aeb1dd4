"""The peer, BeadHub 0.3.1, measured in the same run: its setup.sh (../shared/peer beside the repository)
starts it, its own harness runs our workload sizes, and bench/peer_extra.py adds the 1,000-online status.
When it cannot be started or measured, its recorded figures stand in, labelled as such."""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import HOST, ONLINE, CpuSampler
from bench.paths import PEER_DIR, PEER_HOME, PEER_RECORDED, PEER_VENV_PY, ROOT
from tests.servers import free_port

PEER_DEFAULT_PORT = 8765


def python312() -> str | None:
    """A python3.12 that actually runs (the pyenv shim fails unless 3.12 is the active version)."""
    cands = [
        shutil.which("python3.12") or "",
        *sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.12*/bin/python3.12"))),
    ]
    cands += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for c in cands:
        if c and os.path.exists(c):
            try:
                if (
                    subprocess.run([c, "-c", "pass"], capture_output=True, timeout=20, check=False).returncode
                    == 0
                ):
                    return c
            except (OSError, subprocess.TimeoutExpired):
                continue
    return None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def peer_setup(mode: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./setup.sh", mode],
        cwd=PEER_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bench_peer(args: argparse.Namespace, sz: dict, tmp: Path, sampler: CpuSampler) -> dict:
    """Start BeadHub, run its harness with our sizes and peer_extra.py, stop it. Falls back to recorded."""
    res: dict[str, Any] = {}
    py = python312()
    why = (
        f"{PEER_DIR}/setup.sh not found"
        if not (PEER_DIR / "setup.sh").exists()
        else "no working python3.12"
        if py is None
        else None
    )
    port = PEER_DEFAULT_PORT
    if why is None and not port_free(port):
        port = free_port()
        print(
            f"[peer] 127.0.0.1:{PEER_DEFAULT_PORT} is busy (another process); running BeadHub on {port}",
            flush=True,
        )
    env = {**os.environ, "PY312": py or "", "BH_PORT": str(port)}
    started = False
    if why is None:
        started, why = start_peer(env, port, res)
    try:
        if why is None:
            why = measure_peer(port, sz, tmp, sampler, res)
    except subprocess.TimeoutExpired as exc:
        why = f"peer harness timed out: {exc}"
    finally:
        if started:
            done = peer_setup("stop", env, timeout=120)
            print(f"[peer] setup.sh stop: rc {done.returncode}", flush=True)
    if why is not None:
        print(
            f"[peer] cannot measure the peer: {why}\n[peer] using RECORDED figures from {PEER_RECORDED}",
            flush=True,
        )
        res.update(source="recorded", why=why, harness=json.loads(PEER_RECORDED.read_text()))
    return res


def start_peer(env: dict, port: int, res: dict) -> tuple[bool, str | None]:
    """`setup.sh fresh`: (whether it ran, so must be stopped; why the peer is not usable, or None)."""
    try:
        t = time.perf_counter()
        done = peer_setup("fresh", env, timeout=600)
        res["setup_s"] = round(time.perf_counter() - t, 1)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"setup.sh fresh: {exc!r}"
    if done.returncode != 0 or not _peer_health(port):
        return True, f"setup.sh fresh failed (rc {done.returncode}): {(done.stderr or done.stdout)[-800:]}"
    return True, None


def harness_command(port: int, sz: dict, out: Path) -> list[str]:
    """The peer's own harness with our counts: mail c=1 / c=8, chat, claims, status, race (its inbox
    read also runs, tied to its mail loop)."""
    flags = {
        "--base": f"http://127.0.0.1:{port}",
        "--out": str(out),
        "--mail-n-seq": sz["mail_c1"],
        "--mail-n-conc": sz["mail_c8"],
        "--chat-n": sz["chat_n"],
        "--claims-n-seq": sz["claims_c1"],
        "--claims-n-conc": sz["claims_c8"],
        "--read-n": sz["status_c1"],
        "--read-n-conc": sz["status_c8"],
        "--race-rounds": sz["race_rounds"],
        "--online": ONLINE,
        "--conc": 8,
        "--max-s": sz["max_s"],
    }
    return [
        str(PEER_VENV_PY),
        str(PEER_DIR / "bench.py"),
        "bench",
        *(x for k, v in flags.items() for x in (k, str(v))),
    ]


def measure_peer(port: int, sz: dict, tmp: Path, sampler: CpuSampler, res: dict) -> str | None:
    """The harness, then peer_extra.py; why the peer could not be measured, or None."""
    print(f"[peer] BeadHub up on 127.0.0.1:{port} (setup {res['setup_s']} s)", flush=True)
    out = tmp / "peer-results"
    for name in ("beadhub.pid", "redis.pid"):
        with_pid = PEER_HOME / "run" / name
        if with_pid.exists():
            sampler.extra_pids.add(int(with_pid.read_text().strip()))
    t = time.perf_counter()
    rc, marks, err = run_streaming(harness_command(port, sz, out), timeout=400)
    res["harness_s"] = round(time.perf_counter() - t, 1)
    files = sorted(out.glob("bench-*.json"))
    if rc != 0 or not files:
        return f"peer harness failed (rc {rc}): {err[-800:]}"
    res["harness"] = json.loads(files[-1].read_text())
    res["source"] = "measured"
    add_peer_windows(res["harness"], marks)
    print(f"[peer] harness done in {res['harness_s']} s", flush=True)
    peer_extra(port, sz, res)
    return None


def peer_extra(port: int, sz: dict, res: dict) -> None:
    """bench/peer_extra.py in the peer's venv: `GET /v1/status` with `online_big` agents online."""
    cmd = [
        str(PEER_VENV_PY),
        str(ROOT / "bench" / "peer_extra.py"),
        "--base",
        f"http://127.0.0.1:{port}",
        "--online",
        str(sz["online_big"]),
        "--n",
        str(sz["status_big"]),
        "--max-s",
        str(sz["max_s"] * 2),
    ]
    t = time.perf_counter()
    extra = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    res["extra_s"] = round(time.perf_counter() - t, 1)
    if extra.returncode == 0:
        res["extra"] = json.loads(extra.stdout.strip().splitlines()[-1])
        print(f"[peer] {res['extra']['online']} online status c=1: {res['extra']['status_c1']}", flush=True)
    else:
        res["extra_error"] = extra.stderr[-800:]
        print(f"[peer] peer_extra.py failed: {res['extra_error']}", flush=True)


def run_streaming(cmd: list[str], timeout: float) -> tuple[int, list[tuple[float, str]], str]:
    """Run the peer harness, time-stamping each stdout line (monotonic) as it arrives; kill at `timeout`."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        marks = []
        try:
            for line in proc.stdout:
                marks.append((time.monotonic(), line.rstrip("\n")))
            rc = proc.wait()
        finally:
            killer.cancel()
        err.seek(0)
        return rc, marks, err.read().decode(errors="replace")[-2000:]


#: Harness output line prefix -> (section, key) of its JSON; the line is printed right after the load loop.
PEER_MARKS = {
    "[a mail c=1]": ("a_mail", "c1"),
    "[a mail c=8]": ("a_mail", "c8"),
    "[b claim c=1]": ("b_claim", "c1"),
    "[b claim c=8]": ("b_claim", "c8"),
    "[d status c=1]": ("d_status", "status_c1"),
    "[d status c=8]": ("d_status", "status_c8"),
}


def add_peer_windows(h: dict, marks: list[tuple[float, str]]) -> None:
    for t, line in marks:
        for prefix, (section, key) in PEER_MARKS.items():
            d = h.get(section, {}).get(key)
            if line.startswith(prefix) and d and d.get("wall_s"):
                d["window"] = [t - d["wall_s"], t]
    # the chat loop runs between the memory snapshot after the status loops and its own summary line
    chat_from = [t for t, line in marks if line.startswith("[mem after_status]")]
    chat_to = [t for t, line in marks if line.startswith("[f chat]")]
    if chat_from and chat_to and h.get("f_chat"):
        h["f_chat"]["window"] = [chat_from[-1], chat_to[-1]]
    race = [t for t, line in marks if line.startswith("[c race ")]
    if race and h.get("c_race", {}).get("rounds"):
        first = h["c_race"]["rounds"][0]["wall_ms"] / 1000
        h["c_race"]["window"] = [race[0] - first, race[-1]]


def _peer_health(port: int) -> bool:
    try:
        c = http.client.HTTPConnection(HOST, port, timeout=3)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False
