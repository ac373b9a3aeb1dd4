"""`wire watch`: block until something needs this agent (mail, chat, a notice, someone waiting).

Route: `GET /v1/watch` (docs/API.md, "Messaging"), long-polled in slices by `client.long_poll`.
This is what agents' hooks call between turns (README, "Notifications and hooks").
"""

from __future__ import annotations

from typing import Any

import click

from cli import output
from cli.client import Client, WaitTimedOut, long_poll, pass_client

#: Seconds `wire watch` waits by default (0 waits forever).
DEFAULT_WATCH = 600


@click.command()
@click.option("--timeout", "wait", type=click.IntRange(min=0), default=DEFAULT_WATCH, show_default=True,
              metavar="SECONDS", help="How long to wait; 0 waits forever.")
@output.json_option
@pass_client
def watch(client: Client, wait: int) -> None:
    """Wait until mail, chat or a notice arrives, or someone waits on you; print it (exit 6 on timeout).

    Survives a server restart while waiting; exits 5 at once if the server cannot be reached at all.
    """
    output.emit(wait_for(client, wait), _print_watch)


def wait_for(client: Client, wait: int) -> dict[str, Any]:
    """The first `/v1/watch` answer with items or waits, within `wait` seconds (0: forever);
    also `wire mcp`'s `watch` tool.

    Raises:
        WaitTimedOut: nothing arrived in time.
    """

    def one_slice(seconds: int) -> dict[str, Any] | None:
        answer = client.watch(seconds) or {}
        return answer if answer.get("items") or answer.get("waiting") else None

    answer = long_poll(one_slice, wait or None, reached=False)
    if answer is None:
        raise WaitTimedOut(f"nothing arrived within {wait} s", details={"wait": wait})
    return answer


def _print_watch(answer: dict[str, Any]) -> None:
    """The banner's lines on stdout, then how to act on them."""
    from cli.banner import item_line, waiting_line

    waits = [w for w in answer.get("waiting") or [] if isinstance(w, dict)]
    items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
    for w in waits:
        click.echo(waiting_line(w))
    for item in items:
        click.echo(item_line(item))
    for hint in _hints(waits, items):
        click.echo(f"-> {hint}")


def _hints(waits: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[str]:
    """The commands that answer or read what arrived."""
    hints = [f"answer: wire chat reply {output.clean(w.get('alias'))} MESSAGE" for w in waits]
    if any(i.get("kind") == "chat" for i in items):
        hints.append("read chats: wire chat pending, then wire chat history ALIAS")
    if any(i.get("kind") != "chat" for i in items):
        hints.append("read mail and notices: wire mail open")
    return hints
