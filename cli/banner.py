"""The banner: what needs the agent, shown on stderr by every command (header `X-Wire-Banner`).

Imported only when an answer carries the header. `Client.request` feeds every answer to one
`Banner` per command, which prints only what this command has not shown yet: each `WAITING`
alias once, each new item once (by id), and skips what the answer itself carries (the reply
`wire chat ask` prints, the items `wire watch` prints), so a long-polling command that makes
hundreds of calls prints each thing once. Reservation conflicts (files you modified that someone
else reserved) print as warnings, once per command. All agent-written text goes through `output.clean`.
"""

from __future__ import annotations

import json
from typing import Any

import click

from cli import output

#: Characters of a mail subject, chat text or notice kept on a banner line.
SNIPPET = 60
#: Answer keys whose objects are messages (or banner items) the command prints itself.
CARRIED_KEYS = ("message", "messages", "items")
#: Answer keys whose objects are `{"alias", "seconds"}` waits the command prints itself.
WAITING_KEYS = ("waiting", "waiting_on_you")


class Banner:
    """The banner of one command: remembers what it printed, prints the rest."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.waited: set[str] = set()
        self.warned: set[str] = set()

    def show(self, header: str, answer: Any = None) -> None:
        """Print the lines of `header` this command has not shown yet (stderr, also in JSON mode)."""
        for line in self.lines(header, answer):
            click.echo(line, err=True)

    def lines(self, header: str, answer: Any = None) -> list[str]:
        """The new lines of one answer's banner; a malformed header shows nothing."""
        banner = parse(header)
        if banner is None:
            return []
        items, aliases = carried(answer)
        self.seen |= items  # the command prints these itself (on stdout)
        self.waited |= aliases
        waiting = [w for w in _dicts(banner.get("waiting")) if self._first(self.waited, _alias(w))]
        new = [i for i in _dicts(banner.get("new")) if self._first(self.seen, item_key(i))]
        lines = [waiting_line(w) for w in waiting] + [item_line(i) for i in new]
        paused = banner.get("paused")
        if isinstance(paused, dict) and self._first(self.warned, "paused"):
            lines.insert(0, paused_line(paused))
        unread = banner.get("unread")
        if new and isinstance(unread, int) and unread > 0:
            lines.append(f"{unread} unread (wire mail list)")
        if isinstance(answer, dict):  # `wire lock` and `wire locks --check` print these themselves
            carried_conflicts = _dicts(answer.get("conflicts")) + _dicts(answer.get("holders"))
            self.warned |= {conflict_key(c) for c in carried_conflicts}
        conflicts = [c for c in _dicts(banner.get("conflicts")) if self._first(self.warned, conflict_key(c))]
        return lines + [conflict_line(c) for c in conflicts]

    @staticmethod
    def _first(shown: set[str], key: str) -> bool:
        """Whether `key` is new to `shown` (and remember it)."""
        if key in shown:
            return False
        shown.add(key)
        return True


def parse(header: str) -> dict[str, Any] | None:
    """The banner object of a header value, or None if it is not a JSON object."""
    try:
        banner = json.loads(header)
    except ValueError:
        return None
    return banner if isinstance(banner, dict) else None


def carried(answer: Any) -> tuple[set[str], set[str]]:
    """Ids of the messages and aliases of the waits an answer carries (so the banner skips them).

    Only message-shaped objects (with a `kind`) count, so a bead's id never hides a banner item.
    """
    objects = list(answer) if isinstance(answer, list) else []
    waits: list[Any] = []
    if isinstance(answer, dict):
        for key in CARRIED_KEYS:
            value = answer.get(key)
            objects += value if isinstance(value, list) else [value]
        for key in WAITING_KEYS:
            value = answer.get(key)
            waits += value if isinstance(value, list) else []
    items = {item_key(o) for o in _dicts(objects) if "kind" in o and o.get("id") is not None}
    return items, {_alias(w) for w in _dicts(waits)}


def item_key(item: dict[str, Any]) -> str:
    """What identifies a banner item: its id, else (for an item without one) its content."""
    if item.get("id") is not None:
        return f"id:{item['id']}"
    return "item:" + json.dumps([item.get("kind"), item.get("from"), item.get("subject"), item.get("text")])


def paused_line(paused: dict[str, Any]) -> str:
    """`PAUSED: paused by maria: REASON (claim nothing new until resumed)`."""
    by, reason = output.clean(paused.get("by") or "?"), output.clean(paused.get("reason") or "")
    return f"PAUSED: paused by {by}{': ' + reason if reason else ''} (claim nothing new until resumed)"


def waiting_line(wait: dict[str, Any]) -> str:
    """`WAITING: bob is waiting for your reply (42s)`."""
    seconds = wait.get("seconds")
    age = f" ({int(seconds)}s)" if isinstance(seconds, int | float) else ""
    return f"WAITING: {_alias(wait)} is waiting for your reply{age}"


def item_line(item: dict[str, Any]) -> str:
    """`mail from bob: subject`, `chat from bob: text`, `notice: text` (clean, one short line)."""
    kind, sender = output.clean(item.get("kind") or "message"), output.clean(item.get("from") or "?")
    if item.get("human"):  # a person wrote it from the dashboard
        sender += " (human)"
    if kind == "mail":
        return f"mail from {sender}: {output.snippet(item.get('subject') or item.get('text'), SNIPPET)}"
    if kind == "notice":
        return f"notice: {output.snippet(item.get('text') or item.get('subject'), 2 * SNIPPET)}"
    return f"{kind} from {sender}: {output.snippet(item.get('text') or item.get('subject'), SNIPPET)}"


def conflict_key(conflict: dict[str, Any]) -> str:
    return json.dumps([conflict.get("path"), conflict.get("alias"), conflict.get("pattern")])


def conflict_line(conflict: dict[str, Any]) -> str:
    """`warning: src/a.py is reserved by bob as src/** (refactor; 4m05s left)`: a file you modified."""
    from cli.locks import conflict_text  # noqa: PLC0415 - start-up time: only for a lock conflict

    return f"warning: {conflict_text(conflict)}"


def _alias(wait: dict[str, Any]) -> str:
    return output.clean(wait.get("alias") or "?")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
