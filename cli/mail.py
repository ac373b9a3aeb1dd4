"""Mail commands: `wire mail send|list|open|ack|sent|search` (async, durable, read and acknowledged).

Routes: `/v1/mail...` (docs/API.md, "Messaging"). Mail is agent-written text: everything printed
here goes through `output.clean` (bodies keep their newlines).
"""

from __future__ import annotations

from typing import Any

import click

from cli import generated, output
from cli.client import Client, pass_client

PRIORITIES = ("low", "normal", "high", "urgent")
#: Characters of a body shown in a list when the message has no subject.
LIST_SNIPPET = 70


@click.group()
def mail() -> None:
    """Mail: async, durable messages to agents (`wire mail send bob "..."`, `wire mail open`)."""


def message_id(value: str) -> int:
    """`42` or `#42` as a message id.  Raises: click.BadParameter: not a number."""
    text = value.strip().lstrip("#")
    if not text.isdigit():
        raise click.BadParameter(f"{value!r} is not a message id (a number, e.g. 42)")
    return int(text)


# -- send ------------------------------------------------------------------------------------

@mail.command()
@click.argument("to")
@click.argument("body")
@click.option("-s", "--subject", metavar="S", help="Subject line.")
@click.option("--thread", metavar="T",
              help="Thread (default: the bead id when the subject or body starts with [bd-12]).")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Default: normal.")
@output.json_option
@pass_client
def send(client: Client, to: str, body: str, subject: str | None, thread: str | None,
         priority: str | None) -> None:
    """Mail TO (an alias, a,b, @role or @all); BODY '-' reads stdin. Unknown alias: exit 4."""
    text = output.text_or_stdin(body)
    if not text.strip():
        raise click.UsageError("the message body is empty")
    answer = client.send_mail({"to": to, "body": text, "subject": subject, "thread": thread,
                               "priority": priority})
    output.emit(answer, _print_sent)


def _print_sent(answer: dict[str, Any]) -> None:
    message = answer.get("message") or {}
    recipients = ", ".join(output.clean(r) for r in answer.get("recipients") or []) or "nobody"
    thread = f" (thread {output.clean(message['thread'])})" if message.get("thread") else ""
    click.echo(f"sent #{message.get('id', '?')} to {recipients}{thread}")


# -- read ------------------------------------------------------------------------------------

@mail.command("list")
@click.option("--unread", is_flag=True, help="Only what you have not acknowledged.")
@click.option("--from", "sender", metavar="ALIAS", help="Only from this alias.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N messages.")
@output.json_option
@pass_client
def list_mail(client: Client, unread: bool, sender: str | None, limit: int | None) -> None:
    """List mail and notices you received, newest first (read one with `wire mail open ID`)."""
    output.emit(client.mail(unread, sender, limit), lambda m: _print_received(m, unread))


@mail.command("open")
@click.argument("target", metavar="[ALIAS|MESSAGE_ID]", required=False)
@output.json_option
@pass_client
def open_mail(client: Client, target: str | None) -> None:
    """Show and acknowledge mail: one message (a number), a sender's unread (an alias), or all unread."""
    if target is None:
        messages, empty = client.open_mail(), "no unread mail"
    elif target.strip().lstrip("#").isdigit():
        messages, empty = client.open_mail(message_id=message_id(target)), f"no message {target}"
    else:
        messages, empty = client.open_mail(sender=target), f"no unread mail from {output.clean(target)}"
    output.emit(messages, lambda m: _print_messages(m, empty))


@mail.command()
@click.argument("ident", metavar="ID")
@output.json_option
@pass_client
def ack(client: Client, ident: str) -> None:
    """Acknowledge a message without showing it."""
    number = message_id(ident)
    output.emit(client.ack(number), lambda a: _print_acked(a, number))


# -- rendering (also `wire mcp`'s, cli/mcp_server.py) ------------------------------------------

def _print_sent_list(messages: list[dict[str, Any]]) -> None:
    _print_list(messages, "no sent mail", _sent_row)


def _print_found(messages: list[dict[str, Any]]) -> None:
    _print_list(messages, "no matches", _any_row)


def _print_received(messages: list[dict[str, Any]], unread: bool) -> None:
    _print_list(messages, "no unread mail" if unread else "no mail", _received_row)


def _print_acked(answer: Any, number: int) -> None:
    click.echo(f"acknowledged #{number}")


def _print_list(messages: list[dict[str, Any]], empty: str, row: Any) -> None:
    if not messages:
        click.echo(empty)
        return
    click.echo(output.table([row(m) for m in messages]))


def _received_row(m: dict[str, Any]) -> list[str]:
    """#id, new, sender, age, priority (when not normal), subject."""
    return [f"#{m.get('id', '?')}", "" if m.get("acked") else "new", sender(m),
            output.ago(m.get("created_at")), _priority(m), title(m)]


def _sent_row(m: dict[str, Any]) -> list[str]:
    return [f"#{m.get('id', '?')}", "to " + recipients(m), output.ago(m.get("created_at")), _priority(m),
            title(m)]


def _any_row(m: dict[str, Any]) -> list[str]:
    return [f"#{m.get('id', '?')}", f"{sender(m)} -> {recipients(m)}", output.ago(m.get("created_at")),
            _priority(m), title(m)]


def sender(m: dict[str, Any]) -> str:
    """The sender's alias; notices (no sender) show as `notice`."""
    return output.clean(m["from"]) if m.get("from") else output.clean(m.get("kind") or "?")


def recipients(m: dict[str, Any]) -> str:
    to = m.get("to")
    return ", ".join(output.clean(a) for a in to) if isinstance(to, list) else output.clean(to or "?")


def title(m: dict[str, Any]) -> str:
    """The subject, else the start of the body: one clean line."""
    return output.snippet(m.get("subject") or m.get("body"), LIST_SNIPPET)


def _priority(m: dict[str, Any]) -> str:
    value = m.get("priority")
    return "" if value in (None, "normal") else output.clean(value)


def _print_messages(messages: list[dict[str, Any]], empty: str) -> None:
    if not messages:
        click.echo(empty)
        return
    for i, m in enumerate(messages):
        if i:
            click.echo()
        print_message(m)


def print_message(m: dict[str, Any]) -> None:
    """A whole message: a header line, the subject, then the body (newlines kept, controls removed)."""
    facts = [output.ago(m.get("created_at")), _priority(m), m.get("thread") and f"thread {m['thread']}"]
    facts_text = " · ".join(output.clean(f) for f in facts if f)
    kind = output.clean(m.get("kind") or "mail")
    # a notice has no sender: `#4 notice to bob`, not `notice from notice`
    origin = f" from {sender(m)}" if m.get("from") else ""
    click.echo(f"#{m.get('id', '?')} {kind}{origin} to {recipients(m)} · {facts_text}")
    if m.get("subject"):
        click.echo(f"subject: {output.clean(m['subject'])}")
    body = output.clean(m.get("body"), newlines=True).rstrip()
    if body:
        click.echo(f"\n{body}")


# `wire mail sent` and `wire mail search` are generated from their rows (cli/ops_coord.py); added last, as
# their printers above must exist when they are built
mail.add_command(generated.command("mail sent"))
mail.add_command(generated.command("mail search"))
