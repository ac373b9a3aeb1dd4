"""The measured workloads against a beadwire server's API: setup (register, online, sync) and each
load (claims, the race, mail, chat, status). Each returns its figures as a dict."""

from __future__ import annotations

import collections
import json
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

from bench.load import ONLINE, RACERS, WORKERS, Conn, pct, run_load

REPO_ORIGIN = "https://github.com/bench/beadwire-bench"


def register(
    port: int, project: str, aliases: list[str], conc: int = 1, max_s: float = 120.0
) -> tuple[str, list[str]]:
    """Create `project` with the first alias, join the rest with the project key; return key + tokens."""
    conn = Conn(port)
    body = {
        "project": project,
        "repo_origin": REPO_ORIGIN,
        "alias": aliases[0],
        "human": f"Human {aliases[0]}",
    }
    first = conn.json("POST", "/v1/init", body)
    conn.close()
    key, tokens = first["project_key"], [first["token"]] + [""] * (len(aliases) - 1)
    failures: list[str] = []

    def op(c: Conn, tid: int, i: int) -> int:
        alias = aliases[i + 1]
        status, raw = c.call(
            "POST",
            "/v1/init",
            {"project": project, "repo_origin": REPO_ORIGIN, "alias": alias, "human": f"Human {alias}"},
            token=key,
        )
        if status == 201:
            tokens[i + 1] = json.loads(raw)["token"]
        else:
            failures.append(f"{status} {raw[:200]!r}")
        return status

    res = run_load(port, len(aliases) - 1, conc, max_s, op)
    if failures or not all(tokens):
        raise RuntimeError(f"registration of {project} failed: {failures[:3]} ({res})")
    return key, tokens


def make_online(port: int, tokens: list[str], conc: int, max_s: float = 120.0) -> dict:
    """Each workspace makes one authenticated call (GET /v1/mine), which refreshes its presence."""
    return run_load(
        port, len(tokens), conc, max_s, lambda c, tid, i: c.call("GET", "/v1/mine", token=tokens[i])[0]
    )


def sync_beads(port: int, token: str, ids: list[str], title: str) -> dict:
    rows = [
        {"id": b, "title": f"{title} {b}", "status": "open", "priority": 2, "issue_type": "task"} for b in ids
    ]
    conn = Conn(port)
    res = conn.json(
        "POST",
        "/v1/sync",
        {"mode": "incremental", "jsonl": "".join(json.dumps(r) + "\n" for r in rows)},
        token=token,
    )
    conn.close()
    if res.get("created") != len(ids):
        raise RuntimeError(f"bead sync created {res.get('created')} of {len(ids)}: {res}")
    return res


def claims(
    port: int | Sequence[int], workers: list[str], ids_by_conc: dict[int, list[str]], max_s: float
) -> dict:
    """Claims on distinct beads: one op = one `POST /v1/beads/<id>/claim`, thread k as workspace k
    (thread k through web process k mod their number, given several ports)."""
    out: dict[str, Any] = {}
    for conc, ids in ids_by_conc.items():
        r = run_load(
            port,
            len(ids),
            conc,
            max_s,
            lambda c, tid, i, ids=ids: c.call(
                "POST", f"/v1/beads/{ids[i]}/claim", {}, workers[tid % WORKERS]
            )[0],
        )
        out[f"claim_c{conc}"] = r
        print(f"[ours] claim c={conc}: {r}", flush=True)
    return out


def race_round(port: int, racers: list[str], bead: str) -> dict:
    """20 agents released by a barrier claim one bead: exactly one 200 expected, the rest 409."""
    conns = [Conn(port, racers[k]) for k in range(RACERS)]
    barrier = threading.Barrier(RACERS)
    results: list[int] = [0] * RACERS

    def racer(k: int) -> None:
        conns[k].call("GET", "/v1/health")  # connection open and warm before the barrier
        barrier.wait(30)
        results[k] = conns[k].call("POST", f"/v1/beads/{bead}/claim", {})[0]

    ths = [threading.Thread(target=racer, args=(k,), daemon=True) for k in range(RACERS)]
    t = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    wall = (time.perf_counter() - t) * 1000
    for c in conns:
        c.close()
    st = collections.Counter(results)
    return {
        "bead": bead,
        "winners_200": st.get(200, 0),
        "losers_409": st.get(409, 0),
        "other": {str(k): v for k, v in st.items() if k not in (200, 409)},
        "wall_ms": round(wall, 1),
    }


def race(port: int, racers: list[str], race_ids: list[str], reader: str) -> dict:
    """A race per bead of `race_ids`, then `GET /v1/claims` (as `reader`) counts each bead's holders."""
    race_start = time.monotonic()
    rounds = [race_round(port, racers, bead) for bead in race_ids]
    conn = Conn(port)
    held = conn.json("GET", "/v1/claims", token=reader)
    conn.close()
    holders = collections.Counter(c["bead"] for c in held if c["bead"] in set(race_ids))
    for r in rounds:
        r["holders_after"] = holders.get(r["bead"], 0)
    out = {
        "agents": RACERS,
        "rounds": rounds,
        "rounds_exactly_one_200": sum(1 for r in rounds if r["winners_200"] == 1),
        "rounds_clean": sum(1 for r in rounds if r["winners_200"] == 1 and r["losers_409"] == RACERS - 1),
        "rounds_one_holder": sum(1 for r in rounds if r["holders_after"] == 1),
        "max_winners": max((r["winners_200"] for r in rounds), default=None),
        "window": [race_start, time.monotonic()],
    }
    print(
        f"[ours] race: exactly one 200 in {out['rounds_exactly_one_200']}/{len(rounds)} rounds; "
        f"clean (1x200 + 19x409) {out['rounds_clean']}; one holder after {out['rounds_one_holder']}",
        flush=True,
    )
    return out


def mail(port: int | Sequence[int], workers: list[str], sz: dict, concs: tuple[int, ...] = (1, 8)) -> dict:
    """Mail send at each of `concs` (201 counts), then how long until every mail sits in its mailbox
    (thread k through web process k mod their number, given several ports)."""
    out: dict[str, Any] = {}
    received: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def send(c: Conn, tid: int, i: int) -> int:
        to = (i + 1) % WORKERS
        body = {"to": f"w{to:02d}", "subject": f"m{i}", "body": f"bench message {i} " + "x" * 100}
        status = c.call("POST", "/v1/mail", body, workers[i % WORKERS])[0]
        if status == 201:
            with lock:
                received[to] += 1
        return status

    for conc in concs:
        r = run_load(port, sz[f"mail_c{conc}"], conc, sz["max_s"], send, ok=201)
        out[f"mail_c{conc}"] = r
        print(f"[ours] mail send c={conc}: {r}", flush=True)
    first = port if isinstance(port, int) else port[0]
    out["mail_delivery"] = mail_drained(first, workers, received, sz["max_s"] * 3)
    print(f"[ours] mail delivery: {out['mail_delivery']}", flush=True)
    return out


def mail_drained(port: int, workers: list[str], received: collections.Counter, max_s: float) -> dict:
    """Seconds until each recipient's banner counts every mail sent to it as unread (i.e. the outbox
    worker has put them all into the mailbox streams), polled with `GET /v1/whoami` calls (each reads at
    most 20 new entries). Measured from the end of the last send loop, so it includes the worker's lag."""
    t0 = time.perf_counter()
    conn = Conn(port)
    left = {k: n for k, n in received.items() if n}
    calls = 0
    while left and time.perf_counter() - t0 < max_s:
        for k in list(left):
            conn.call("GET", "/v1/whoami", token=workers[k])
            calls += 1
            banner = json.loads(conn.banner) if conn.banner else {}
            if banner.get("unread", 0) >= left[k]:
                del left[k]
    conn.close()
    return {
        "mails": sum(received.values()),
        "all_delivered": not left,
        "seconds": round(time.perf_counter() - t0, 2),
        "whoami_calls": calls,
    }


def chat_rounds(port: int, ana: str, bob: str, n: int, max_s: float, samples: bool = False) -> dict:
    """`n` sequential chat round trips: chat-a asks (`POST /v1/chat` with wait) and blocks in
    `GET /v1/chat/wait` on its own connection; 50 ms later (as the peer harness's sleep before replying)
    chat-b answers with `POST /v1/chat`. Latency = from the reply POST starting to the waiter's answer.
    With `samples`, the figures include every latency and ask time (ms), to pool interleaved runs."""
    ask, reply, wait = Conn(port, ana), Conn(port, bob), Conn(port, ana)
    for c in (ask, reply, wait):
        c.call("GET", "/v1/health")  # open + warm
    lat: list[float] = []
    ask_ms: list[float] = []
    errors: list[str] = []
    start = time.monotonic()
    deadline = start + max_s
    for i in range(n):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        status, raw = ask.call("POST", "/v1/chat", {"to": "chat-b", "body": f"q{i}", "wait": 60})
        ask_ms.append((time.perf_counter() - t) * 1000)
        if status != 201:
            errors.append(f"ask {i}: {status} {raw[:200]!r}")
            continue
        asked = json.loads(raw)
        query = f"with=chat-b&after={asked['message']['id']}&cursor={asked['cursor']}&timeout=10"
        got: dict[str, Any] = {}

        def waiter(query: str = query, got: dict = got) -> None:
            try:
                got["status"], got["raw"] = wait.call("GET", f"/v1/chat/wait?{query}")
            except Exception as exc:  # noqa: BLE001 - report, don't hang the run
                got["error"] = repr(exc)
            got["t"] = time.perf_counter()

        th = threading.Thread(target=waiter, daemon=True)
        th.start()
        time.sleep(0.05)  # let the wait block on the mailbox before the reply
        t_send = time.perf_counter()
        status, raw = reply.call("POST", "/v1/chat", {"to": "chat-a", "body": f"a{i}"})
        th.join(15)
        if status != 201:
            errors.append(f"reply {i}: {status} {raw[:200]!r}")
            continue
        messages = json.loads(got.get("raw") or b"{}").get("messages", []) if got.get("status") == 200 else []
        if [m["body"] for m in messages] == [f"a{i}"]:
            lat.append((got["t"] - t_send) * 1000)
        else:
            errors.append(f"wait {i}: {got.get('status')} {got.get('error') or got.get('raw', b'')[:200]!r}")
    for c in (ask, reply, wait):
        c.close()
    return {
        "n": len(lat),
        "median_ms": round(statistics.median(lat), 2) if lat else None,
        "p99_ms": round(pct(lat, 99), 2) if lat else None,
        "max_ms": round(max(lat), 2) if lat else None,
        "ask_median_ms": round(statistics.median(ask_ms), 2) if ask_ms else None,
        "errors": errors[:5],
        "window": [start, time.monotonic()],
        **({"samples_ms": lat, "ask_samples_ms": ask_ms} if samples else {}),
    }


def _claim_ten(port: int, tokens: list[str], prefix: str) -> None:
    """Beads `<prefix>-00..09`, each claimed by one of the first ten workspaces."""
    sync_beads(port, tokens[0], [f"{prefix}-{i:02d}" for i in range(10)], "status bead")
    conn = Conn(port)
    for i in range(10):
        conn.json("POST", f"/v1/beads/{prefix}-{i:02d}/claim", {}, token=tokens[i])
    conn.close()


def _status_body(port: int, token: str) -> bytes:
    conn = Conn(port)
    _, raw = conn.call("GET", "/v1/status", token=token)
    conn.close()
    return raw


def status50(port: int, sz: dict) -> dict:
    """`GET /v1/status` at c=1 and c=8 in a project of 50 workspaces online, 10 of them holding a claim."""
    out: dict[str, Any] = {}
    _, st50 = register(port, "status50", [f"s{i:02d}" for i in range(ONLINE)])
    _claim_ten(port, st50, "bd-st")
    make_online(port, st50, conc=4)
    raw = _status_body(port, st50[0])
    out["status50_online"] = sum(1 for w in json.loads(raw)["team"] if w["online"])
    out["status50_bytes"] = len(raw)
    for conc, n in ((1, sz["status_c1"]), (8, sz["status_c8"])):
        r = run_load(
            port,
            n,
            conc,
            sz["max_s"],
            lambda c, tid, i: c.call("GET", "/v1/status", token=st50[i % ONLINE])[0],
        )
        out[f"status50_c{conc}"] = r
        print(
            f"[ours] status 50 online ({out['status50_online']} seen, {len(raw)} B) c={conc}: {r}", flush=True
        )
    return out


def status_big(port: int, sz: dict) -> tuple[dict, list[str]]:
    """`GET /v1/status` at c=1 with `online_big` (1,000) workspaces online; the figures and their tokens."""
    out: dict[str, Any] = {}
    t = time.perf_counter()
    _, big = register(port, "status1000", [f"b{i:04d}" for i in range(sz["online_big"])], conc=8)
    out["big_register_s"] = round(time.perf_counter() - t, 2)
    _claim_ten(port, big, "bd-big")
    t = time.perf_counter()
    out["big_online_calls"] = make_online(port, big, conc=8)
    out["big_online_s"] = round(time.perf_counter() - t, 2)
    raw = _status_body(port, big[0])
    out["status_big_online"] = sum(1 for w in json.loads(raw)["team"] if w["online"])
    out["status_big_bytes"] = len(raw)
    r = run_load(
        port,
        sz["status_big"],
        1,
        sz["max_s"] * 2,
        lambda c, tid, i: c.call("GET", "/v1/status", token=big[i % len(big)])[0],
    )
    out["status_big_c1"] = r
    print(
        f"[ours] status {out['status_big_online']} online ({len(raw)} B; register {out['big_register_s']} s, "
        f"online calls {out['big_online_s']} s) c=1: {r}",
        flush=True,
    )
    return out, big
