"""Printing for the CLI: JSON for machines (`--json` / `WIRE_JSON=1`), short text for people.

Results go to stdout; warnings and human-mode errors go to stderr; in JSON mode an error is a
`{"error": {...}}` object on stdout so a caller parses one stream.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import click

#: Key in `ctx.meta` (shared by a context and its children) that holds the JSON switch.
JSON_KEY = "wire.json"

F = TypeVar("F", bound=Callable[..., Any])


def is_json(ctx: click.Context | None = None) -> bool:
    """Whether this invocation prints JSON (`--json` anywhere, or `WIRE_JSON` when no context)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None and JSON_KEY in ctx.meta:
        return bool(ctx.meta[JSON_KEY])
    return os.environ.get("WIRE_JSON", "").strip().lower() in ("1", "true", "yes", "on")


def set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Option callback: `--json` switches JSON on for the whole invocation (never off)."""
    if value or JSON_KEY not in ctx.meta:
        ctx.meta[JSON_KEY] = bool(value)


#: A command's own `--json` flag (`json_option`, `json_param`).
JSON_FLAG: dict[str, Any] = {"is_flag": True, "envvar": "WIRE_JSON", "expose_value": False,
                             "callback": set_json, "help": "Print JSON instead of text."}


def json_option(f: F) -> F:
    """Give a command its own `--json` flag, so `wire list --json` works like `wire --json list`."""
    return click.option("--json", "json_", **JSON_FLAG)(f)


def json_param() -> click.Option:
    """`json_option` for a command built without decorators (cli/generated.py)."""
    return click.Option(["--json", "json_"], **JSON_FLAG)


@overload
def text_or_stdin(value: str) -> str: ...
@overload
def text_or_stdin(value: None) -> None: ...
def text_or_stdin(value: str | None) -> str | None:
    """`value`, or what stdin holds when it is `-` (long bodies, descriptions, answers). Read through
    `click.open_file`, which decodes stdin as click's streams do (UTF-8 where the locale is plain
    ASCII); `click.get_text_stream` is deprecated from click 8.5."""
    if value != "-":
        return value
    with click.open_file("-", "r") as stdin:
        return str(stdin.read())


def emit(data: Any, render: Callable[[Any], None]) -> None:
    """Print a result: JSON as is in JSON mode, else through `render`."""
    if is_json():
        print_json(data)
    else:
        render(data)


def print_json(data: Any) -> None:
    """Print one JSON document on stdout."""
    import json  # noqa: PLC0415 - only in JSON mode: `wire --help` imports this module (start-up time)

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def git_text(git: dict[str, Any]) -> str:
    """`on wire/bob, 3 ahead, not merged` (also `1 behind main`): where a claim's work sits."""
    parts = [f"on {git.get('branch') or '-'}", f"{git.get('ahead', 0)} ahead"]
    if git.get("behind"):
        parts.append(f"{git['behind']} behind {git.get('base') or 'the default branch'}")
    parts.append("merged" if git.get("merged") else "not merged")
    return ", ".join(parts)


def warn(message: str) -> None:
    """Print a warning on stderr."""
    click.echo(f"warning: {message}", err=True)


def show_error(error: dict[str, Any], json_mode: bool) -> None:
    """Print an error body `{"code", "message", ...}`: as JSON on stdout, or as text on stderr."""
    if json_mode:
        print_json({"error": error})
        return
    # messages may quote agent-written text (a holder's human name, an alias): never raw escapes
    click.echo(f"error: {clean(str(error.get('message', 'failed')))}", err=True)
    for line in _error_details(error):
        click.echo(f"  {clean(line)}", err=True)
    if error.get("hint"):
        click.echo(f"hint: {clean(str(error['hint']))}", err=True)


def _error_details(error: dict[str, Any]) -> list[str]:
    """The details worth a line in human mode: validation messages and the bad JSONL line, each
    unless the message says it already (a single bad field usually is the message)."""
    message = str(error.get("message", ""))
    lines = [f"{name}: {_messages(text)}" for name, text in (error.get("fields") or {}).items()]
    lines = [line for line in lines if line not in message]
    if error.get("line") is not None and f"line {error['line']}" not in message:
        lines.append(f"at line {error['line']}")  # said once: the message usually names it already
    return lines


def _messages(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_messages(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_messages(v)}" for k, v in value.items())
    return str(value)


# -- text helpers ----------------------------------------------------------------------------

#: Terminal escape sequences: CSI (`ESC [ ... final`, also the one-byte C1 CSI), OSC (`ESC ] ...`
#: up to BEL or `ESC \\`, or the end) and the other two-byte `ESC X` sequences. Removed whole, so
#: their parameters don't show up as litter. Patterns, compiled on first use by `re` (JSON mode, what
#: agents run, prints no text: start-up time).
_ESCAPES = (r"\x1b\[[0-?]*[ -/]*[@-~]?|\x9b[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
            r"|\x1b[ -~]?")
#: Whatever is left that a terminal could act on: C0 controls, DEL, C1 controls, and the Unicode
#: bidi overrides/isolates that can reorder what a reader sees. `\n` is handled by `clean`.
_CONTROLS = "[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"


def clean(text: Any, *, newlines: bool = False) -> str:
    """Text that is safe to print: escape sequences and control characters removed.

    Agent-written text (mail, chat, notices, aliases) is untrusted: it must not be able to move the
    cursor, recolour, retitle or clear the reader's terminal. Tabs become spaces; newlines are kept
    only with `newlines=True` (message bodies), else they become spaces too.
    """
    text = "" if text is None else str(text)
    text = text.replace("\r\n", "\n").replace("\t", " ")
    text = re.sub(_CONTROLS, "", re.sub(_ESCAPES, "", text))
    return text if newlines else text.replace("\n", " ")


def snippet(text: Any, limit: int = 60) -> str:
    """One clean line of at most `limit` characters (whitespace runs collapsed, `…` when cut)."""
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def table(rows: Sequence[Sequence[str]], headers: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    every = [list(headers)] + [list(r) for r in rows] if headers else [list(r) for r in rows]
    if not every:
        return ""
    widths = [max(len(r[i]) for r in every) for i in range(len(every[0]) - 1)]
    return "\n".join(_row(r, widths) for r in every)


def _row(cells: list[str], widths: list[int]) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
    return "  ".join([*padded, cells[-1]]).rstrip()


def priority(value: Any) -> str:
    """`P0`..`P4` for a numeric priority; anything else as given."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return f"P{value}"
    return "" if value is None else str(value)


def ago(timestamp: str | None) -> str:
    """`5m ago` for an ISO-8601 timestamp (UTC when naive); `-` for none; the text if unparsable."""
    if not timestamp:
        return "-"
    from datetime import (  # noqa: PLC0415 - start-up time: `--help` loads us
        UTC,
        datetime,
    )

    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return _span((datetime.now(UTC) - then).total_seconds())


def _span(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"
