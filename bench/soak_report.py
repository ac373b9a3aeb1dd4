"""The soak test's report (bench/soak.py): its figures as a Markdown table, and that table written into
bench/RESULTS.md."""

from __future__ import annotations

from typing import Any

from bench.paths import RESULTS


def report(r: dict[str, Any]) -> str:
    c, m, mem = r["claims"], r["mail"], r["memory"]
    mark = {True: "✅", False: "❌", None: "–"}
    a = r["args"]
    lines = [
        (f"Soak, {r['date']}, {r['machine']}; {a['agents']} agents, {a['minutes']} min, {a['database']}, "
         f"think {a['think']} s; load average at the end "
         f"{', '.join(f'{x:.1f}' for x in r['load_avg_at_end'])}"),
        "",
        "| check | figures | ok |",
        "|---|---|---|",
        (f"| throughput | {r['requests']:,} requests in {r['duration_s']:.0f} s = "
         f"**{r['throughput_rps']} req/s**; "
         f"{c['claims_acked']:,} claims, {m['mail_acked']:,} mails, {r['beads_created']:,} beads created, "
         f"{r['chat'].get('asks', 0)} chat asks ({r['chat'].get('replies', 0)} answered, "
         f"{r['chat'].get('timeouts', 0)} timed out) | |"),
        (f"| errors | {r['unexpected_answers']} unexpected answers or exceptions of {r['requests']:,}; "
         f"{r['claim_conflicts_409']:,} expected 409 claim conflicts (races); "
         f"{r['keepalive_retries']} requests resent after a keep-alive race | {mark[r['errors_ok']]} |"),
        (f"| claims | {c['beads_claimed']:,} beads claimed, {c['beads_one_holder']:,} with exactly one "
         f"holder in their history; {c['claim_events']:,} claim events in the audit for "
         f"{c['claims_acked']:,} acknowledged; {len(c['overlaps'])} overlapping holders; "
         f"{len(c['closed_by_someone_else'])} closed by a non-holder | {mark[c['ok']]} |"),
        (f"| mail | {m['mail_acked']:,} acknowledged, {m['mail_opened']:,} opened by their recipients "
         f"({len(m['opened_twice'])} twice, {len(m['never_opened'])} never, "
         f"{len(m['opened_by_wrong_agent'])} by someone else); {m['banner_shown']:,} shown in banners, "
         f"{len(m['banner_shown_twice'])} twice; {m['outbox_undelivered']} deliveries not in Redis; "
         f"{m['mail_left_in_mailboxes']} left in mailboxes; drain {r['drain_s']} s | {mark[m['ok']]} |"),
        (f"| memory (web+worker+clock) | own memory (RssAnon) {mem.get('anon_at_start_mib')} MiB at start, "
         f"{mem.get('anon_first_mib')} after warm-up, {mem.get('anon_last_mib')} at the end, max "
         f"{mem.get('anon_max_mib')}; RSS with mapped files {mem.get('at_start_mib')} / "
         f"{mem.get('first_mib')} / {mem.get('last_mib')}, max {mem.get('max_mib')} "
         f"({mem.get('samples')} samples, every {a['rss_every']:.0f} s, warm-up {a['warmup']:.0f} s); "
         f"Redis {mem.get('redis_last_mib')} MiB at the end | {mark[mem['ok']]} |"),
        "",
        "| operation | n | p50 ms | p99 ms |",
        "|---|---|---|---|",
        *(f"| {op} | {v['n']:,} | {v['p50']} | {v['p99']} |" for op, v in r["latency_ms"].items()),
    ]
    return "\n".join(lines)


def write_results(table: str) -> None:
    begin, end = "<!-- soak:begin -->", "<!-- soak:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else ""
    section = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n## Soak\n\n" + section + "\n"  # below bench/run.py's KEPT_FROM
    RESULTS.write_text(text)
