"""`wire watch`: block until something needs this agent (mail, chat, a notice, someone waiting, and
with `--ready` new work); `wire wait-ready`: block until a bead, or any bead for me, is ready.

Routes: `GET /v1/watch` and `GET /v1/wait-ready` (docs/API.md, "Messaging" and "Routes"), long-polled
in slices by `client.long_poll`. This is what agents' hooks call between turns (README, "Notifications
and hooks"). Each prints first one line saying why it woke (`woke: bd-12 is ready (you subscribed)`).
"""

from __future__ import annotations

from typing import Any

import click

from cli import local, output
from cli.banner import item_line, waiting_line
from cli.client import Client, WaitTimedOut, pass_client
from cli.polling import long_poll

#: Seconds `wire watch` and `wire wait-ready` wait by default (0 waits forever).
DEFAULT_WATCH = 600
#: Why a ready notice reached me, as the woke line says it.
NOTICE_WHY = {"subscribed": "you subscribed", "assigned": "assigned to you"}


@click.command()
@click.option("--timeout", "wait", type=click.IntRange(min=0), default=DEFAULT_WATCH, show_default=True,
              metavar="SECONDS", help="How long to wait; 0 waits forever.")
@click.option("--ready", is_flag=True,
              help="Also wake when new work becomes ready in your repo for your role.")
@click.option("--cursor", metavar="ID", help="With --ready: look from this event on (default: where the "
              "last `wire watch --ready` of this worktree stopped, else from now).")
@output.json_option
@pass_client
def watch(client: Client, wait: int, ready: bool, cursor: str | None) -> None:
    """Wait until mail, chat or a notice arrives, someone waits on you, or (--ready) work becomes
    ready; say why and print it (exit 6 on timeout).

    A bead you subscribed to or are assigned to that becomes ready always wakes it. Survives a server
    restart while waiting; exits 5 at once if the server cannot be reached at all.
    """
    answer = wait_for(client, wait, ready, cursor)
    output.emit({**answer, "woke": woke_line(answer).removeprefix("woke: ")}, _print_watch)


def wait_for(client: Client, wait: int, ready: bool = False, cursor: str | None = None) -> dict[str, Any]:
    """The first `/v1/watch` answer with items, waits or (`ready`) ready work, within `wait` seconds
    (0: forever); also `wire mcp`'s `watch` tool.

    Raises:
        WaitTimedOut: nothing arrived in time.
    """
    state = {"cursor": (cursor or _saved_cursor(client)) if ready else None}

    def one_slice(seconds: int) -> dict[str, Any] | None:
        answer = client.watch(seconds, ready, state["cursor"]) or {}
        state["cursor"] = answer.get("cursor") or state["cursor"]
        return answer if answer.get("items") or answer.get("waiting") or answer.get("ready") else None

    try:
        answer = long_poll(one_slice, wait or None, reached=False)
    finally:
        if ready and state["cursor"]:
            _save_cursor(client, state["cursor"])
    if answer is None:
        raise WaitTimedOut(f"nothing arrived within {wait} s",
                           details={"wait": wait, "cursor": state["cursor"]})
    return answer


@click.command("wait-ready")
@click.argument("ref", metavar="[ID]", required=False)
@click.option("--timeout", "wait", type=click.IntRange(min=0), default=DEFAULT_WATCH, show_default=True,
              metavar="SECONDS", help="How long to wait; 0 waits forever.")
@output.json_option
@pass_client
def wait_ready(client: Client, ref: str | None, wait: int) -> None:
    """Wait until bead ID (or, without ID, any bead for you in your repo) is ready; print it (exit 6 on
    timeout). Answers at once when it is ready already."""
    output.emit(wait_for_ready(client, ref, wait or None), _print_ready)


def wait_for_ready(client: Client, ref: str | None, wait: float | None) -> dict[str, Any]:
    """`{"ready": true, "bead": Bead}` once bead `ref` (None: any bead for me) is ready, waiting up to
    `wait` seconds (None: forever) in long-poll slices; what `wire wait-ready` and an MCP tool call.

    Raises:
        WaitTimedOut: the wait ended first (details: `wait`, `reasons` the bead is still not ready).
        ServerUnreachable: the server could not be reached at all.
    """
    last: dict[str, Any] = {}

    def one_slice(seconds: int) -> dict[str, Any] | None:
        answer = client.wait_ready(ref, seconds) or {}
        last.update(answer)
        return answer if answer.get("ready") else None

    answer = long_poll(one_slice, wait, reached=False)
    if answer is None:
        what = f"{ref} is still not ready" if ref else "no bead became ready for you"
        reasons = last.get("reasons") or []
        because = f": {'; '.join(output.clean(r) for r in reasons)}" if reasons else ""
        raise WaitTimedOut(f"{what} after {wait:g} s{because}", details={"wait": wait, "reasons": reasons})
    return answer


# -- the cursor of `--ready` ------------------------------------------------------------------

def _saved_cursor(client: Client) -> str | None:
    return local.read_ready_cursor(client.workspace.root) if client.workspace is not None else None


def _save_cursor(client: Client, cursor: str) -> None:
    if client.workspace is not None:
        local.write_ready_cursor(client.workspace.root, cursor)


# -- printing ---------------------------------------------------------------------------------

def woke_line(answer: dict[str, Any]) -> str:
    """One line saying why the wait ended: the first thing among what arrived, and how many more."""
    waits = [w for w in answer.get("waiting") or [] if isinstance(w, dict)]
    items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
    ready = [b for b in answer.get("ready") or [] if isinstance(b, dict)]
    reasons = [f"{output.clean(i.get('bead'))} is ready ({NOTICE_WHY.get(str(i.get('why')), 'a notice')})"
               for i in items if i.get("event") == "bead.ready"]
    reasons += [f"{output.clean(b.get('id'))} is ready ({_ready_why(b)})" for b in ready]
    reasons += [f"{output.clean(w.get('alias'))} is waiting for your reply" for w in waits]
    reasons += [_item_reason(i) for i in items if i.get("event") != "bead.ready"]
    if not reasons:
        return "woke: nothing new"
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"woke: {reasons[0]}{more}"


def _ready_why(bead: dict[str, Any]) -> str:
    role = bead.get("role")
    return f"new work, role:{output.clean(role)}" if role else "new work in your repo"


def _item_reason(item: dict[str, Any]) -> str:
    kind, sender = output.clean(item.get("kind") or "message"), output.clean(item.get("from") or "")
    if kind == "notice":
        return f"a notice{' about ' + output.clean(item['bead']) if item.get('bead') else ''}"
    return f"{kind} from {sender}" if sender else kind


def _print_watch(answer: dict[str, Any]) -> None:
    """Why it woke, the banner's lines and the new work, then how to act on them."""
    click.echo(woke_line(answer))
    waits = [w for w in answer.get("waiting") or [] if isinstance(w, dict)]
    items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
    ready = [b for b in answer.get("ready") or [] if isinstance(b, dict)]
    for w in waits:
        click.echo(waiting_line(w))
    for item in items:
        click.echo(item_line(item))
    for bead in ready:
        role = f"  [role:{output.clean(bead['role'])}]" if bead.get("role") else ""
        click.echo(f"ready: {output.clean(bead.get('id'))}: {output.snippet(bead.get('title'), 80)}{role}")
    for hint in _hints(waits, items, ready):
        click.echo(f"-> {hint}")


def _hints(waits: list[dict[str, Any]], items: list[dict[str, Any]],
           ready: list[dict[str, Any]]) -> list[str]:
    """The commands that answer or read what arrived."""
    hints = [f"answer: wire chat reply {output.clean(w.get('alias'))} MESSAGE" for w in waits]
    if any(i.get("kind") == "chat" for i in items):
        hints.append("read chats: wire chat pending, then wire chat history ALIAS")
    if any(i.get("kind") != "chat" for i in items):
        hints.append("read mail and notices: wire mail open")
    work = [i.get("bead") for i in items if i.get("event") == "bead.ready"] + [b.get("id") for b in ready]
    if work:
        hints.append(f"take it: wire claim {output.clean(work[0])}")
    return hints


def _print_ready(answer: dict[str, Any]) -> None:
    bead = answer.get("bead") or {}
    ident = output.clean(bead.get("id", "?"))
    click.echo(f"{ident} is ready: {output.clean(bead.get('title'))}")
    click.echo(f"-> take it: wire claim {ident}")
