"""Chat commands: `wire chat ask|reply|send|pending|history` (sync: the sender waits for a reply).

Routes: `/v1/chat...` (docs/API.md, "Messaging"). `ask` and `reply` post with `wait`, so the other
agent sees `WAITING`, then long-poll `GET /v1/chat/wait` in slices (`client.long_poll`) until a reply
or the end of the wait, which survives a server restart: each slice resumes after the posted
message's id. A wait that ends without a reply tells the server (`/v1/chat/done`) and exits 6.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli import generated, output
from cli.banner import waiting_line
from cli.client import Client, WaitTimedOut, WireError, pass_client
from cli.polling import long_poll

#: Seconds `wire chat ask` waits for a reply by default.
DEFAULT_ASK_WAIT = 300
#: Seconds `wire chat reply` waits for the answer to the answer by default.
DEFAULT_REPLY_WAIT = 120
#: Seconds allowed for the `/v1/chat/done` call made while giving up (best effort).
DONE_TIMEOUT = 5.0


@click.group()
def chat() -> None:
    """Chat: ask an agent and wait for the answer. Mail first; chat when you are blocked."""


def _wait_option(default: int) -> Any:
    return click.option("--wait", type=click.IntRange(min=0), default=default, show_default=True,
                        metavar="SECONDS", help="How long to wait for a reply (0: send and leave).")


@chat.command()
@click.argument("to")
@click.argument("message")
@_wait_option(DEFAULT_ASK_WAIT)
@output.json_option
@pass_client
def ask(client: Client, to: str, message: str, wait: int) -> None:
    """Ask TO and wait for the reply; exit 6 if none comes in time. MESSAGE '-' reads stdin."""
    converse(client, to, message, wait)


@chat.command()
@click.argument("to")
@click.argument("message")
@_wait_option(DEFAULT_REPLY_WAIT)
@output.json_option
@pass_client
def reply(client: Client, to: str, message: str, wait: int) -> None:
    """Answer TO and wait for what they say next; exit 6 if nothing comes in time. MESSAGE '-' reads stdin."""
    converse(client, to, message, wait)


@chat.command()
@click.argument("to")
@click.argument("message")
@output.json_option
@pass_client
def send(client: Client, to: str, message: str) -> None:
    """Say something to TO and leave (no wait). MESSAGE '-' reads stdin."""
    converse(client, to, message, 0)


def converse(client: Client, to: str, message: str, wait: int) -> None:
    """Post `message` to `to`; with `wait` > 0, wait for and print the reply.

    Raises:
        WaitTimedOut: no reply within `wait` seconds.
    """
    text = output.text_or_stdin(message)
    output.emit(*talk(client, to, text, wait))


def talk(client: Client, to: str, text: str, wait: int) -> tuple[Any, Callable[[Any], None]]:
    """Post `text` to `to`; with `wait` > 0, wait for the reply. Returns the answer and its renderer
    (`wire mcp`'s chat tools call this too).

    Raises:
        click.UsageError: the text is empty.
        WaitTimedOut: no reply within `wait` seconds.
    """
    if not text.strip():
        raise click.UsageError("the message is empty")
    answer = client.chat(to, text, wait)
    if wait <= 0:
        return answer, _print_sent
    posted = answer.get("message") or {}
    return await_reply(client, to, posted.get("id"), answer.get("cursor"), wait), _print_replies


def await_reply(client: Client, alias: str, after: Any, cursor: str | None, wait: int) -> list[Any]:
    """Long-poll until `alias` says something after message `after`; return those messages.

    Raises:
        WaitTimedOut: nothing within `wait` seconds (the server is told we stopped waiting).
    """
    state = {"cursor": cursor}

    def one_slice(seconds: int) -> list[Any] | None:
        answer = client.chat_wait(alias, after, state["cursor"], seconds) or {}
        state["cursor"] = answer.get("cursor") or state["cursor"]
        return answer.get("messages") or None

    replies = None
    try:
        replies = long_poll(one_slice, wait)
    finally:  # also on Ctrl-C or an error: don't leave the other agent seeing WAITING
        if not replies:
            _done(client, alias)
    if not replies:
        raise WaitTimedOut(f"no reply from {output.clean(alias)} within {wait} s",
                           details={"with": alias, "wait": wait})
    return replies


def _done(client: Client, alias: str) -> None:
    """Tell the server we stopped waiting on `alias`; best effort (it also expires on its own)."""
    try:
        client.chat_done(alias, timeout=DONE_TIMEOUT)
    except WireError:
        pass


# -- history -----------------------------------------------------------------------------------


@chat.command()
@click.argument("alias")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N messages (the latest).")
@output.json_option
@pass_client
def history(client: Client, alias: str, limit: int | None) -> None:
    """Your conversation with ALIAS, oldest first (marks it read)."""
    empty = f"no chat with {output.clean(alias)} yet"
    output.emit(client.chat_history(alias, limit), lambda m: _print_chat(m, ages=True, empty=empty))


# -- rendering -------------------------------------------------------------------------------

def _print_sent(answer: dict[str, Any]) -> None:
    message = answer.get("message") or {}
    to = message.get("to")
    names = ", ".join(map(output.clean, to)) if isinstance(to, list) else output.clean(to or "?")
    click.echo(f"sent to {names}")


def _print_replies(messages: list[dict[str, Any]]) -> None:
    _print_chat(messages, ages=False)


def _print_chat(messages: list[dict[str, Any]], ages: bool, empty: str = "no messages") -> None:
    if not messages:
        click.echo(empty)
    for m in messages:
        click.echo(chat_text(m, ages))


def chat_text(m: dict[str, Any], ages: bool = False) -> str:
    """`bob: text` (`[5m ago] bob: text` with ages); later lines of the body indented."""
    prefix = f"[{output.ago(m.get('created_at'))}] " if ages else ""
    body = output.clean(m.get("body"), newlines=True).strip("\n")
    return f"{prefix}{output.clean(m.get('from') or m.get('kind') or '?')}: " + body.replace("\n", "\n  ")


def _print_pending(answer: dict[str, Any]) -> None:
    waits = [w for w in answer.get("waiting_on_you") or [] if isinstance(w, dict)]
    conversations = [c for c in answer.get("conversations") or [] if isinstance(c, dict)]
    if not waits and not conversations:
        click.echo("no conversations")
    for w in waits:
        click.echo(f"{waiting_line(w)}: wire chat reply {output.clean(w.get('alias'))} MESSAGE")
    rows = [_conversation_row(c) for c in conversations]
    if rows:
        click.echo(output.table(rows))


def _conversation_row(c: dict[str, Any]) -> list[str]:
    last = c.get("last") or {}
    return [output.clean(c.get("with") or "?"), f"{c.get('unread') or 0} unread",
            output.ago(last.get("created_at")), output.snippet(last.get("body"))]


# `wire chat pending` is generated from its row (cli/ops_coord.py); added last, as its printer above must
# exist when it is built
chat.add_command(generated.command("chat pending"))
