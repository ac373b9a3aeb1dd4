"""The wording of the dashboard: an event as a line of the Activity feed or of a bead's history.

Plain text only: the templates escape it (agent text is never marked safe).
"""

from __future__ import annotations

from typing import Any

from store.dashboard import EventRecord
from store.util import iso

#: Counts of a sync's Activity line, in this order.
SYNC_COUNTS = ("created", "updated", "tombstoned", "pulled", "conflicts")


def event_row(event: EventRecord) -> dict[str, Any]:
    """A feed line: kind, who, what (plain text; the template escapes it), when; `mass` marks a sync
    that changed many beads at once (the page makes it stand out); `sid` is the stream entry's id."""
    kind, data = event.kind, event.data
    who = str(data.get("alias") or data.get("from") or "")
    return {"sid": event.sid, "kind": kind, "who": who, "what": summary(kind, data), "at": iso(event.ts),
            "bead": data.get("bead"), "mass": bool(data.get("mass"))}


def summary(kind: str, d: dict[str, Any]) -> str:
    """What an event says, in a line of plain text."""
    bead, title = d.get("bead", ""), d.get("title", "")
    if kind == "claim.created":
        return f"claimed {bead} {title}".strip()
    if kind in ("claim.jumped", "claim.taken_stale"):
        return f"took {bead} from {d.get('previous', '?')}: {d.get('reason', '')}"
    if kind == "claim.released":  # a person freeing someone else's claim names the holder and why
        held = f" (held by {d['holder']}): {d.get('reason', '')}" if d.get("holder") else ""
        return f"released {bead}{held}"
    if kind == "claim.stale":
        return f"claim on {bead} went stale"
    if kind == "claim.idle":
        return f"idle with a claim on {', '.join(map(str, d.get('beads') or []))}"
    if kind == "bead.closed":
        return f"closed {bead}" + (f": {d['reason']}" if d.get("reason") else "")
    if d.get("redacted"):
        return f"{kind} (not yours to read)"
    if kind in ("mail", "notice", "chat"):
        to = ", ".join(d.get("to") or [])
        text = d.get("subject") or d.get("body") or ""
        return f"{kind} to {to}: {cut(str(text), 160)}"
    if kind.startswith("reservation."):
        pats = d.get("patterns") or [d.get("pattern", "")]
        verb = {"created": "reserved"}.get(kind.split(".", 1)[1], kind.split(".", 1)[1])
        return f"{verb} {', '.join(str(p) for p in pats)}" + (" (modified files)" if d.get("auto") else "")
    if kind == "workspace.joined":
        return f"joined as {d.get('role', '?')} in {d.get('repo', '?')}"
    if kind.startswith("escalation."):
        return f"escalation #{d.get('escalation')} {kind.split('.', 1)[1]}: {d.get('subject', '')}"
    if kind.startswith("presence."):
        return kind.split(".", 1)[1] + (f" on {d['host']}" if d.get("host") else "")
    if kind == "policy.activated":
        return f"policy version {d.get('version')} activated"
    if kind == "beads.synced":
        counts = ", ".join(f"{d.get(k, 0)} {k}" for k in SYNC_COUNTS if d.get(k))
        head = "MASS CHANGE: " if d.get("mass") else ""
        return f"{head}sync #{d.get('sync', '?')} of {d.get('repo', '?')}: {counts or 'no change'}"
    if kind == "beads.sync_undone":
        return (f"undid sync #{d.get('undo_of', '?')} (as #{d.get('sync', '?')}): "
                f"{d.get('restored', 0)} beads put back")
    if kind == "bead.synced":
        return f"sync #{d.get('sync', '?')} {d.get('action', 'changed')} {bead}" + (
            f": {', '.join(map(str, d.get('fields') or []))}" if d.get("fields") else "")
    if kind == "bead.sync_conflict":
        return (f"sync #{d.get('sync', '?')}: {d.get('reason', '')}; kept the {d.get('kept', '?')}'s "
                f"{cut(str(d.get('value')), 80)}, not {cut(str(d.get('lost')), 200)}")
    if kind == "bead.sync_undone":
        return f"put back as before sync #{d.get('sync', '?')}"
    return f"{kind.split('.', 1)[-1]} {bead} {title}".strip()


def cut(text: str, n: int) -> str:
    """`text` cut to `n` characters, an ellipsis showing where."""
    return text if len(text) <= n else text[: n - 1] + "…"
