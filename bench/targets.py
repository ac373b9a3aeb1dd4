"""Issue 19's targets, each met or missed with its figures, from one run's results.

The throughput targets are shares of the limit of our own stack measured in the same run: the bare
endpoint of bench/ceiling_app.py (Flask under gunicorn, one SQLite transaction, one XADD). The peer's
own figures move by a factor of two from run to run on a shared machine; it stays in the table.

A `--database postgres` run has targets of its own: mail and claims against the peer (which runs
PostgreSQL too), our share of the bare endpoint on PostgreSQL and the 2 web + 2 worker layout (both
report only), and the race.
"""

from __future__ import annotations

from typing import Any

from bench.load import NOISY_PCT
from bench.memory import KINDS
from bench.ours import CLI_COMMANDS
from bench.report import CEILING_GEVENT, fmt

#: (what, our result key, the bare endpoint's key, least share of it).
SHARES = (
    ("mail send c=1", "mail_c1", "mail_c1", 0.85),
    ("mail send c=8", "mail_c8", "mail_c8", 0.85),
    ("claims on distinct beads c=8", "claim_c8", "mail_c8", 0.70),
)
CHAT_MEDIAN_MS = 5.0
CHAT_P99_MS = 10.0
CLI_MEDIAN_MS = 100.0
#: A `wire` command at most this many times `python3 -c pass`, measured in the same run.
CLI_PASS_FACTOR = 2.2
#: On PostgreSQL, where the peer runs PostgreSQL too: mail and claims at least this many times the peer.
PG_PEER_FACTOR = 3.0

Goal = tuple[str, str, bool | None]


def targets(ours: dict, peer: dict | None) -> list[Goal]:
    """(target, what was measured, met?) per target; None when it could not be judged."""
    h = (peer or {}).get("harness") or {}
    if ours.get("database") == "postgres":  # the PostgreSQL run has targets of its own (issue 19)
        out = postgres_targets(ours, h) + [pg_share(ours, *row) for row in SHARES] + layout_rows(ours)
    else:
        out = [share_target(ours, *row) for row in SHARES]
        out += [chat_target(ours), memory_target(ours, h), cli_target(ours)]
    race = ours["race"]
    out.append(
        (
            "race: every round exactly one winner",
            f"{race['rounds_exactly_one_200']}/{len(race['rounds'])} rounds",
            race["rounds_exactly_one_200"] == len(race["rounds"]),
        )
    )
    return out


def _noisy(*results: dict | None) -> str:
    if max((r or {}).get("other_cpu_pct") or 0 for r in results) > NOISY_PCT:
        return " ⚠ (other load during the measurement)"
    return ""


def share_target(ours: dict, what: str, key: str, bare_key: str, share: float) -> Goal:
    """Our throughput as a share of the bare endpoint's at the same concurrency."""
    ops = ours[key].get("ops_s")
    bare_run = (ours.get("ceiling") or {}).get(bare_key) or {}
    bare = bare_run.get("ops_s")
    name = f"{what}: ≥ {share:.0%} of the bare endpoint"
    if not ops or not bare:
        return name, f"{fmt(ops)} ops/s, bare endpoint {fmt(bare)} ops/s", None
    measured = f"{fmt(ops)} ops/s = {ops / bare:.0%} of the bare endpoint's {fmt(bare)} ops/s"
    measured += gevent_share(ops, ours.get("ceiling") or {}, bare_key)
    return name, measured + _noisy(ours[key], bare_run), ops / bare >= share


def gevent_share(ops: float, ceiling: dict, bare_key: str) -> str:
    """Report only, beside a share of the bare endpoint: the share of the same endpoint served as `wire
    serve` serves us (gevent worker: bench/ours.py's `CEILING_VARIANTS`), when it was measured."""
    served = (ceiling.get(CEILING_GEVENT[0] + bare_key) or {}).get("ops_s")
    if not served:
        return ""
    return (
        f" ({ops / served:.0%} of the same endpoint under `wire serve`'s gevent worker: {fmt(served)} ops/s)"
    )


def chat_target(ours: dict) -> Goal:
    chat = ours.get("chat") or {}
    med, p99 = chat.get("median_ms"), chat.get("p99_ms")
    met = None if med is None or p99 is None else med < CHAT_MEDIAN_MS and p99 < CHAT_P99_MS
    return (
        f"chat reply → waiter: median < {CHAT_MEDIAN_MS:g} ms, p99 < {CHAT_P99_MS:g} ms",
        f"median {fmt(med)} ms, p99 {fmt(p99)} ms (n={chat.get('n')})" + _noisy(chat),
        met,
    )


def peer_total_mib(h: dict) -> float | None:
    """The peer's server (uvicorn RSS: one process, the harness reads no PSS) + PostgreSQL + Redis (PSS)
    at the end of its run."""
    end = (h.get("e_memory_mib") or {}).get("end") or {}
    parts = [end.get("VmRSS"), end.get("postgres_pss_mib"), end.get("redis_pss_mib")]
    return round(sum(parts), 1) if all(isinstance(p, int | float) for p in parts) else None


def memory_target(ours: dict, h: dict) -> Goal:
    """Ours as PSS summed over every process `wire serve` starts (bench/memory.py: summed RSS counts a
    page the gunicorn workers share with their master once per process), RSS shown beside it."""
    mem: dict[str, Any] = ours.get("rss_end_mib") or {}
    rss: dict[str, Any] = mem.get("rss") or {}
    total, peer = mem.get("total"), peer_total_mib(h)
    kinds = ", ".join(f"{kind} {fmt(mem.get(kind))}" for kind in KINDS if kind in mem)
    measured = (
        f"PSS {fmt(total)} MiB ({kinds}; summed RSS {fmt(rss.get('total'))}) vs the peer's {fmt(peer)} MiB"
    )
    return (
        "memory: everything `wire serve` starts, Redis included (PSS), ≤ the peer's server + PostgreSQL "
        "+ Redis",
        measured,
        None if total is None or peer is None else total <= peer,
    )


def cli_target(ours: dict) -> Goal:
    cli = ours.get("cli") or {}
    medians = {k: cli[k]["median_ms"] for k in CLI_COMMANDS if isinstance(cli.get(k), dict)}
    bare = (cli.get("python_pass") or {}).get("median_ms")
    name = (
        f"a `wire` command ({', '.join(CLI_COMMANDS)}): median ≤ {CLI_MEDIAN_MS:g} ms and "
        f"≤ {CLI_PASS_FACTOR:g}× `python3 -c pass`"
    )
    if len(medians) < len(CLI_COMMANDS) or not bare:
        why = (str(cli.get("error") or "missing figures").strip().splitlines() or ["?"])[-1]
        return name, f"not measured ({why[:200]})", None
    worst = max(medians, key=lambda k: medians[k])
    bound = min(CLI_MEDIAN_MS, CLI_PASS_FACTOR * bare)
    measured = (
        f"slowest `{worst}` {fmt(medians[worst])} ms = {medians[worst] / bare:.2f}× `python3 -c pass` "
        f"({fmt(bare)} ms); bound {fmt(bound)} ms"
    )
    return name, measured + _noisy(cli), medians[worst] <= bound


#: On PostgreSQL, (what, our result key, the peer harness's section and key) held to `PG_PEER_FACTOR`.
PG_PEER_ROWS = (
    ("mail send c=1", "mail_c1", "a_mail", "c1"),
    ("mail send c=8", "mail_c8", "a_mail", "c8"),
    ("claims on distinct beads c=8", "claim_c8", "b_claim", "c8"),
)


def postgres_targets(ours: dict, h: dict) -> list[Goal]:
    """On PostgreSQL: mail and claims at least 3× the peer's throughput in the same run."""
    out = []
    for what, key, section, conc in PG_PEER_ROWS:
        peer_part = h.get(section, {}).get(conc)
        ops, p_ops = ours[key].get("ops_s"), (peer_part or {}).get("throughput_rps")
        ratio = ops / p_ops if ops and p_ops else None
        measured = (
            f"{fmt(ops)} ops/s vs {fmt(p_ops)}: {ratio:.2f}×"
            if ratio
            else f"{fmt(ops)} ops/s (no peer figure)"
        )
        out.append(
            (
                f"PostgreSQL, {what}: ≥ {PG_PEER_FACTOR:g}× the peer's throughput",
                measured + _noisy(ours[key], peer_part),
                None if ratio is None else ratio >= PG_PEER_FACTOR,
            )
        )
    return out


def pg_share(ours: dict, what: str, key: str, bare_key: str, _share: float) -> Goal:
    """Report only: our throughput as a share of the bare endpoint on PostgreSQL, same concurrency."""
    ceiling = ours.get("ceiling") or {}
    ops = ours[key].get("ops_s")
    bare_run = (ceiling.get(bare_key) or {}) if ceiling.get("database") == "postgres" else {}
    bare = bare_run.get("ops_s")
    name = f"PostgreSQL, {what}: share of the bare endpoint on PostgreSQL (report only)"
    if not ops or not bare:
        return name, f"{fmt(ops)} ops/s, bare endpoint on PostgreSQL {fmt(bare)} ops/s", None
    measured = f"{fmt(ops)} ops/s = {ops / bare:.0%} of the bare endpoint's {fmt(bare)} ops/s"
    measured += gevent_share(ops, ceiling, bare_key)
    return name, measured + _noisy(ours[key], bare_run), None


def layout_rows(ours: dict) -> list[Goal]:
    """Report only: 2 web + 2 worker processes against 1 + 1, same workloads, same run."""
    layouts = ours.get("layouts") or {}
    one, two = layouts.get("1w1k") or {}, layouts.get("2w2k") or {}
    out: list[Goal] = []
    for what, key in (("claims on distinct beads c=8", "claim_c8"), ("mail send c=8", "mail_c8")):
        a, b = (one.get(key) or {}).get("ops_s"), (two.get(key) or {}).get("ops_s")
        measured = f"{fmt(b)} ops/s vs {fmt(a)} ops/s with 1 web + 1 worker"
        if a and b:
            measured += f": {b / a:.2f}×" + _noisy(one.get(key), two.get(key))
        out.append((f"PostgreSQL, 2 web + 2 worker processes, {what} (report only)", measured, None))
    return out
