"""The report: one markdown table (ours beside the peer), the notes under it, and what went wrong."""

from __future__ import annotations

import itertools
from typing import Any

from bench.load import CEILING_PG_ROW, CEILING_ROWS, NOISY_PCT
from bench.memory import KINDS
from bench.ours import CLI_COMMANDS

#: The ceiling rows again for the bare endpoint served as `wire serve` serves beadwire (bench/ours.py's
#: `CEILING_VARIANTS`): (result key prefix, row name suffix).
CEILING_GEVENT = ("gevent_", " (gevent worker, as `wire serve`)")


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


def _throughput_rows(ours: dict, h: dict, extra: dict) -> list[tuple[str, Any, dict, dict | None]]:
    """(name, concurrency, our figures, the peer's) for each throughput row."""
    rows: list[tuple[str, Any, dict, dict | None]] = [
        ("claim, distinct beads", 1, ours["claim_c1"], h.get("b_claim", {}).get("c1")),
        ("claim, distinct beads", 8, ours["claim_c8"], h.get("b_claim", {}).get("c8")),
        ("`GET /v1/status`, 50 online", 1, ours["status50_c1"], h.get("d_status", {}).get("status_c1")),
        ("`GET /v1/status`, 50 online", 8, ours["status50_c8"], h.get("d_status", {}).get("status_c8")),
    ]
    big = f"`GET /v1/status`, {ours.get('status_big_online')} online"
    if extra and extra.get("status_agents_listed", 0) < extra.get("online", 0):
        # BeadHub caps the agent list of /v1/status: it does less work than we do (we list everyone)
        big += f" (peer lists {extra['status_agents_listed']} of {extra['online']})"
    rows.append((big, 1, ours["status_big_c1"], extra.get("status_c1")))
    rows += [
        ("mail send `POST /v1/mail`, 1 recipient", 1, ours["mail_c1"], h.get("a_mail", {}).get("c1")),
        ("mail send `POST /v1/mail`, 1 recipient", 8, ours["mail_c8"], h.get("a_mail", {}).get("c8")),
    ]
    ceiling = ours.get("ceiling") or {}
    routes = (CEILING_PG_ROW,) if ceiling.get("database") == "postgres" else CEILING_ROWS
    for (variant, suffix), (prefix, what) in itertools.product((("", ""), CEILING_GEVENT), routes):
        for conc in (1, 8):
            if ceiling.get(f"{variant}{prefix}mail_c{conc}"):
                rows.append(
                    (
                        what + suffix,
                        conc,
                        ceiling[f"{variant}{prefix}mail_c{conc}"],
                        h.get("a_mail", {}).get(f"c{conc}"),
                    )
                )
    return rows


class Table:
    """The markdown table's lines; `noisy` once a row was measured while other processes took CPU."""

    def __init__(self, label: str) -> None:
        self.noisy = False
        self.lines = [
            (
                f"| metric | conc | n | beadwire | {label} | ratio (>1: beadwire better) "
                f"| beadwire median / p99 ms | {label} median ms | other procs' CPU % (ours / peer) |"
            ),
            "|---|---|---|---|---|---|---|---|---|",
        ]

    def row(
        self,
        name: str,
        conc: Any,
        n: Any,
        o_txt: str,
        p_txt: str,
        ratio: float | None,
        o_lat: str,
        p_med: Any,
        o_cpu: Any,
        p_cpu: Any,
    ) -> None:
        cell = f"{ratio:.2f}×" if ratio else "–"
        if max(o_cpu or 0, p_cpu or 0) > NOISY_PCT:
            cell += " ⚠"
            self.noisy = True
        self.lines.append(
            f"| {name} | {conc} | {n} | {o_txt} | {p_txt} | {cell} | {o_lat} | {fmt(p_med)} "
            f"| {fmt(o_cpu)} / {fmt(p_cpu)} |"
        )


def _table(ours: dict, h: dict, extra: dict, label: str) -> Table:
    t = Table(label)
    for name, conc, o, p in _throughput_rows(ours, h, extra):  # ratio = our ops/s over the peer's
        p_ops = p.get("throughput_rps") if p else None
        t.row(
            name,
            conc,
            o["n"],
            f"{fmt(o['ops_s'])} ops/s",
            f"{fmt(p_ops)} ops/s" if p_ops else "–",
            o["ops_s"] / p_ops if p_ops and o.get("ops_s") else None,
            f"{fmt(o['median_ms'])} / {fmt(o['p99_ms'])}",
            p.get("median_ms") if p else None,
            o.get("other_cpu_pct"),
            (p or {}).get("other_cpu_pct"),
        )
    race, prace = ours["race"], h.get("c_race")
    ours_won, rounds = race["rounds_exactly_one_200"], len(race["rounds"])
    peer_won = prace["rounds_with_exactly_one_winner"] if prace else None
    t.row(
        f"race on one bead, rounds with exactly one winner ({race['agents']} agents)",
        race["agents"],
        rounds,
        f"{ours_won}/{rounds}",
        f"{peer_won}/{len(prace['rounds'])}" if prace else "–",
        ours_won / peer_won if peer_won else None,
        "–",
        None,
        race.get("other_cpu_pct"),
        (prace or {}).get("other_cpu_pct"),
    )
    chat, pchat = ours.get("chat") or {}, h.get("f_chat") or {}
    if chat:  # latency: ratio = the peer's median over ours
        p_med = pchat.get("reply_to_sse_median_ms")
        t.row(
            "chat reply → blocked waiter, latency (peer: reply → SSE)",
            1,
            chat["n"],
            f"{fmt(chat['median_ms'])} ms",
            f"{fmt(p_med)} ms" if p_med else "–",
            p_med / chat["median_ms"] if p_med and chat["median_ms"] else None,
            f"{fmt(chat['median_ms'])} / {fmt(chat['p99_ms'])}",
            p_med,
            chat.get("other_cpu_pct"),
            pchat.get("other_cpu_pct"),
        )
    rss, pm = ours.get("rss_end_mib") or {}, h.get("e_memory_mib")
    if rss:  # memory: ratio = the peer's RSS over ours
        p_rss = pm["end"].get("VmRSS") if pm else None
        t.row(
            "server memory (at the end; ours: PSS of gunicorn master + workers + worker, peer: uvicorn RSS)",
            "–",
            "–",
            f"{fmt(rss['server'])} MiB",
            f"{fmt(p_rss)} MiB" if p_rss else "–",
            p_rss / rss["server"] if p_rss and rss.get("server") else None,
            "–",
            None,
            None,
            None,
        )
    cli = ours.get("cli", {})
    for name in CLI_COMMANDS:
        c = cli.get(name)
        if c:
            t.row(
                f"`wire --json {name}` (CLI wall time; the peer installs no CLI)",
                1,
                c["n"],
                f"{fmt(c['median_ms'])} ms",
                "–",
                None,
                f"{fmt(c['median_ms'])} / {fmt(c['p99_ms'])}",
                None,
                cli.get("other_cpu_pct"),
                None,
            )
    return t


def report(ours: dict, peer: dict | None) -> str:
    h = (peer or {}).get("harness") or {}
    label = "peer" if not peer else ("peer" if peer.get("source") == "measured" else "peer (RECORDED)")
    extra = (peer or {}).get("extra") or {}
    table = _table(ours, h, extra, label)
    lines = [*table.lines, ""]
    lines.append(
        "* ratio: throughput rows ours ÷ peer's ops/s (the peer's claim is 2 requests, see bench/README.md); "
        "the race our rounds with one winner ÷ the peer's; latency and memory the peer's figure ÷ ours."
    )
    if table.noisy:
        lines.append(
            f"* ⚠ other processes on this machine used more than {NOISY_PCT}% of a core during a "
            "measurement (last column): that ratio is unreliable; re-run on a quiet machine."
        )
    lines += _layouts_table(ours.get("layouts") or {})
    lines += _race_and_messaging_notes(ours, h, label)
    lines += _size_and_memory_notes(ours, peer, h, extra, label)
    for key, what in (
        ("profile", "c=8 claims"),
        ("profile_status_big", f"`GET /v1/status` c=1, {ours.get('status_big_online')} online"),
    ):
        lines += _profile_section(ours.get(key) or {}, what)
    return "\n".join(lines)


def _layouts_table(layouts: dict) -> list[str]:
    """On PostgreSQL: the same c=8 claims and mail through 1 web + 1 worker and 2 web + 2 worker processes."""
    if not layouts:
        return []
    lines = [
        "",
        "Process layouts on PostgreSQL (bench/layouts.py; each web process is gunicorn with `wire serve`'s "
        "settings, each worker one Dramatiq process; one database and Redis per layout; load threads spread "
        "over the web processes):",
        "",
        "| layout | claims c=8 ops/s | median / p99 ms | mail send c=8 ops/s | median / p99 ms "
        "| other procs' CPU % (claims / mail) |",
        "|---|---|---|---|---|---|",
    ]
    base = layouts.get("1w1k") or {}
    for r in layouts.values():
        cells = []
        for key in ("claim_c8", "mail_c8"):
            run = r.get(key) or {}
            ops, base_ops = run.get("ops_s"), (base.get(key) or {}).get("ops_s")
            vs = f" ({ops / base_ops:.2f}× 1 + 1)" if ops and base_ops and r is not base else ""
            cells += [f"{fmt(ops)}{vs}", f"{fmt(run.get('median_ms'))} / {fmt(run.get('p99_ms'))}"]
        cpu = [fmt((r.get(key) or {}).get("other_cpu_pct")) for key in ("claim_c8", "mail_c8")]
        lines.append(f"| {r['webs']} web + {r['workers']} worker | {' | '.join(cells)} | {' / '.join(cpu)} |")
    return [*lines, ""]


def _race_and_messaging_notes(ours: dict, h: dict, label: str) -> list[str]:
    race = ours["race"]
    lines = [
        (
            f"* race, beadwire: {race['agents']} agents × {len(race['rounds'])} rounds; exactly one 200 in "
            f"**{race['rounds_exactly_one_200']}/{len(race['rounds'])}** rounds (clean 1×200 + 19×409: "
            f"{race['rounds_clean']}); one claim holder afterwards in {race['rounds_one_holder']}/"
            f"{len(race['rounds'])}; 200s per round {[r['winners_200'] for r in race['rounds']]}"
        )
    ]
    chat, pchat = ours.get("chat") or {}, h.get("f_chat") or {}
    if chat:
        line = (
            f"* chat, beadwire: reply `POST /v1/chat` → answer of the blocked `GET /v1/chat/wait`: median "
            f"**{fmt(chat['median_ms'])} ms**, p99 {fmt(chat['p99_ms'])} ms, max {fmt(chat['max_ms'])} ms "
            f"(n={chat['n']}); asking (`POST /v1/chat` with wait) median {fmt(chat['ask_median_ms'])} ms"
        )
        if pchat.get("reply_to_sse_median_ms"):
            line += (
                f"; {label}: reply → SSE event median **{fmt(pchat['reply_to_sse_median_ms'])} ms**, p99 "
                f"{fmt(pchat.get('reply_to_sse_p99_ms'))} ms (n={pchat.get('n')}), opening a chat session "
                f"median {fmt(pchat.get('send_median_ms'))} ms"
            )
        lines.append(line)
    md = ours.get("mail_delivery")
    if md:
        lines.append(
            f"* mail delivery, beadwire: all {md['mails']} mails were in their recipients' mailbox streams "
            f"{md['seconds']} s after the last send returned"
            + ("" if md["all_delivered"] else " — **NOT ALL DELIVERED** within the cap")
            + f" (polled with {md['whoami_calls']} `GET /v1/whoami` banner reads)"
        )
    pr = h.get("c_race")
    if pr:
        lines.append(
            f"* race, {label}: {pr['agents']} agents × {len(pr['rounds'])} rounds; exactly one holder in "
            f"**{pr['rounds_with_exactly_one_winner']}/{len(pr['rounds'])}** rounds; max {pr['max_winners']} "
            f"holders; holders per round {[r['claim_rows_in_db'] for r in pr['rounds']]}"
        )
    return lines


def _size_and_memory_notes(ours: dict, peer: dict | None, h: dict, extra: dict, label: str) -> list[str]:
    sizes = (
        f"* `/v1/status` body: beadwire {ours.get('status50_bytes')} B with 50 online, "
        f"{ours.get('status_big_bytes')} B with {ours.get('status_big_online')} online "
        "(every workspace listed)"
    )
    if h.get("d_status", {}).get("status_bytes"):
        sizes += f"; {label} {h['d_status']['status_bytes']} B with 50"
    if extra.get("status_bytes"):
        sizes += (
            f", {extra['status_bytes']} B with {extra['online']} online "
            f"({extra['status_agents_listed']} agents listed)"
        )
    if extra.get("init_500s_retried"):
        sizes += f"; peer answered {extra['init_500s_retried']} `/v1/init` calls with 500 (retried)"
    lines = [sizes]
    if (peer or {}).get("extra_error"):
        last = peer["extra_error"].strip().splitlines()[-1:] or ["?"]
        lines.append(f"* peer, status with many online: `bench/peer_extra.py` failed: {last[0][:300]}")
    lines.append(_our_memory_note(ours["rss_start_mib"], ours["rss_end_mib"]))
    pm = h.get("e_memory_mib")
    if pm:
        lines.append(
            f"* server RSS, {label} (one uvicorn process): {pm['start'].get('VmRSS')} MiB at start → "
            f"{pm['end'].get('VmRSS')} MiB at end "
            f"(and, in its total: PostgreSQL PSS {pm['end'].get('postgres_pss_mib')}, "
            f"Redis PSS {pm['end'].get('redis_pss_mib')})"
        )
    return lines


def _our_memory_note(rs: dict, re_: dict) -> str:
    """PSS per kind at start and at the end, and the same as summed RSS (bench/memory.py `stack_rss`)."""
    procs = rs.get("procs") or {}
    kinds = [k for k in KINDS if k in re_]
    pss = ", ".join(f"{k} {rs.get(k)} → {re_.get(k)}" for k in kinds)
    rss_s, rss_e = rs.get("rss") or {}, re_.get("rss") or {}
    rss = ", ".join(f"{k} {rss_s.get(k)} → {rss_e.get(k)}" for k in kinds)
    counts = ", ".join(f"{k} {procs.get(k)}" for k in kinds)
    return (
        f"* memory, beadwire, everything `wire serve` starts (processes: {counts}): "
        f"PSS {rs.get('total')} MiB at start → {re_.get('total')} MiB at end ({pss}); "
        f"summed RSS {rss_s.get('total')} → {rss_e.get('total')} MiB ({rss}); RSS counts a page the "
        "gunicorn workers share with their master once per process"
    )


def _profile_section(prof: dict, what: str) -> list[str]:
    """Where the time went during a py-spy run: the top frames, self and inclusive."""
    if not prof.get("top_self"):
        return []
    wait = prof["writer_lock_wait_share_of_request_samples"]
    queued = (
        f"request threads spent **{wait}%** of their samples queued for the SQLite writer lock "
        f"(`WriterLock.hold`); of the rest"
        if wait
        else "busy request threads"
    )
    lines = [
        "",
        (
            f"Where the time goes, {what} (py-spy on every gunicorn thread during an extra, unmeasured run "
            f"at {prof['during_profile'].get('ops_s')} ops/s): {queued} "
            f"({prof['samples'].get('working')} samples):"
        ),
        "",
        "| self (leaf) frame | % | inclusive, beadwire code | % |",
        "|---|---|---|---|",
    ]
    for a, b in itertools.zip_longest(prof["top_self"][:8], prof["top_inclusive_ours"][:8]):
        lines.append(
            f"| {a[0] if a else ''} | {a[2] if a else ''} | {b[0] if b else ''} | {b[2] if b else ''} |"
        )
    return lines


def problems(ours: dict) -> list[str]:
    """Non-2xx answers from our server (409 is expected only in the race), client errors, log tracebacks."""
    out = []
    for key in ("claim_c1", "claim_c8", "status50_c1", "status50_c8", "status_big_c1", "mail_c1", "mail_c8"):
        r = ours.get(key) or {}
        bad = {k: v for k, v in r.get("statuses", {}).items() if not k.startswith("2")}
        if bad:
            tag = " (409 on a distinct bead is a BUG)" if key.startswith("claim") and "409" in bad else ""
            out.append(f"{key}: non-2xx statuses {bad}{tag}")
        if r.get("client_errors"):
            out.append(f"{key}: client errors {r['client_errors']}")
    if (ours.get("chat") or {}).get("errors"):
        out.append(f"chat: {ours['chat']['errors']}")
    if ours.get("mail_delivery") and not ours["mail_delivery"]["all_delivered"]:
        out.append(f"mail: not every mail reached its mailbox: {ours['mail_delivery']}")
    for r in ours.get("race", {}).get("rounds", []):
        if r["other"]:
            out.append(f"race {r['bead']}: unexpected statuses {r['other']}")
    for key in ("profile", "profile_status_big"):
        prof = (ours.get(key) or {}).get("during_profile") or {}
        bad = {k: v for k, v in prof.get("statuses", {}).items() if not k.startswith("2")}
        if bad:
            out.append(f"{key} run: non-2xx {bad}")
    for name in CLI_COMMANDS:
        c = (ours.get("cli") or {}).get(name) or {}
        if c and set(c.get("exit_codes", {})) != {0}:
            out.append(f"wire {name}: exit codes {c['exit_codes']}")
    if (ours.get("cli") or {}).get("error"):
        out.append(f"cli: {ours['cli']['error']}")
    if ours.get("server_log_tracebacks"):
        out.append(f"server log: {ours['server_log_tracebacks']} tracebacks")
    for name, r in (ours.get("layouts") or {}).items():
        for key in ("claim_c8", "mail_c8"):
            bad = {k: v for k, v in (r.get(key) or {}).get("statuses", {}).items() if not k.startswith("2")}
            if bad or (r.get(key) or {}).get("client_errors"):
                out.append(f"layout {name} {key}: non-2xx {bad}, client errors {r[key].get('client_errors')}")
        if r.get("mail_delivery") and not r["mail_delivery"]["all_delivered"]:
            out.append(f"layout {name}: not every mail reached its mailbox: {r['mail_delivery']}")
        if r.get("server_log_tracebacks"):
            out.append(f"layout {name}: {r['server_log_tracebacks']} tracebacks in its logs")
    return out
