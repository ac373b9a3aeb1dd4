"""The CLI's error tree: every error `wire` reports, with its API `code` and exit code.

`error_from_response` is the one place where an API error answer becomes an exception carrying the
CLI exit code.
"""

from __future__ import annotations

from typing import IO, Any

import click

from cli import output

#: Shown with a claim refused because someone holds the bead.
CLAIM_HINT = "pick other work with 'wire ready', mail the holder, or take it with --jump-in REASON"
#: A claim refused by the rule (blocked, deferred, an epic with open children, closed): nobody holds it,
#: so there is no one to mail and nothing to jump in on.
NOT_CLAIMABLE_HINT = ("pick other work with 'wire ready' ('wire ready --explain ID' says what a bead "
                      "waits for)")
#: A claim refused because the caller is paused (`wire agent pause`): other work would be refused too.
PAUSED_HINT = ("finish or hand off what you already hold (it stays yours) and claim nothing new until a "
               "human or coordinator resumes you; `wire prime` shows the pause until then")
#: A project key (`--key` / WIRE_PROJECT_KEY) the server does not know: running `wire init` again
#: would not help, the key is what is wrong.
WRONG_KEY_HINT = ("check the project key you gave (--key or WIRE_PROJECT_KEY): it may be mistyped, or a "
                  "human "
                  "replaced it (`wire key rotate`); ask the human who holds the project key for the current "
                  "one")
UNREACHABLE_HINT = "is the server running? start one with `wire serve`, or point --url / WIRE_URL at it"
#: Where `NotBeadwire` says it looked (the health route, and the header every beadwire answer has).
SERVER_HEADER = "X-Beadwire"
HEALTH_PATH = "/v1/health"

class WireError(click.ClickException):
    """Base of every error the CLI reports: an API-style `code`, a message, details, an exit code."""

    exit_code = 1
    code = "error"
    hint: str | None = None

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.code
        self.details = details or {}
        self.hint = hint or self.hint
        # decided now, while the click context (which knows about --json) still exists
        self.json_mode = output.is_json()

    def to_dict(self) -> dict[str, Any]:
        """The body of the JSON error: `{"code", "message", ...details, "hint"?}`."""
        body = {**self.details, "code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the error (JSON on stdout in JSON mode, else text on stderr)."""
        output.show_error(self.to_dict(), self.json_mode)


class UsageFailure(WireError):
    """Raised for a usage error in JSON mode (click's own usage errors print text)."""

    exit_code = 2
    code = "usage"


class Conflict(WireError):
    """Raised on any 409: the request contradicts the current state."""

    exit_code = 3
    code = "conflict"


class ClaimRejected(Conflict):
    """Raised when a claim is refused (409 `claim_conflict`): the message names the holder, or says
    why the bead cannot be claimed (then the hint does not send the caller to a holder)."""

    code = "claim_conflict"
    hint = CLAIM_HINT

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if self.details.get("paused"):
            self.hint = kwargs.get("hint") or PAUSED_HINT
        elif not self.details.get("holder"):
            self.hint = kwargs.get("hint") or NOT_CLAIMABLE_HINT


class NotFound(WireError):
    """Raised on 404: the bead, workspace or project does not exist."""

    exit_code = 4
    code = "not_found"


class ServerUnreachable(WireError):
    """Raised when the server cannot be reached (refused, timed out) or answers 502/503/504."""

    exit_code = 5
    code = "unreachable"
    hint = UNREACHABLE_HINT
    #: Refused or dropped (worth another try soon), as opposed to timed out or answered 502-504.
    retryable = False


class Journaled(ServerUnreachable):
    """Raised when the server is unreachable and the call was kept in `.wire/journal.jsonl` (or the
    bead edit made in `.beads/issues.jsonl`): the next command that reaches the server applies it."""

    code = "offline"
    hint = "the next `wire` command that reaches the server applies it, and reports anything refused"

    def show(self, file: IO[Any] | None = None) -> None:
        """A warning, not an error: nothing is lost (JSON mode prints the usual error body)."""
        if self.json_mode:
            super().show(file)
            return
        click.echo(f"warning: {output.clean(self.message)}", err=True)
        click.echo(f"hint: {self.hint}", err=True)


class WaitTimedOut(WireError):
    """Raised when a blocking wait (chat, watch) ends without an answer."""

    exit_code = 6
    code = "wait_timeout"


class NotBeadwire(WireError):
    """Raised when the server URL answers, but not as beadwire: no token or key was sent to it."""

    code = "not_beadwire"
    hint = ("WIRE_URL (or --url) points at something else: set it to the beadwire server's URL "
            "(`wire serve` listens on http://127.0.0.1:8765 by default)")

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url} is not a beadwire server (GET {HEALTH_PATH} answered HTTP {status} without "
                         f"beadwire's {SERVER_HEADER} header); nothing was sent to it", details={"url": url})


class NotInitialised(WireError):
    """Raised when no `.wire/workspace.json` is found for the current directory."""

    code = "not_initialised"

    def __init__(self) -> None:
        super().__init__("not initialised: run `wire init --project SLUG`")


#: Exception class by HTTP status; anything else 4xx/5xx is a plain `WireError` (exit 1).
STATUS_ERRORS: dict[int, type[WireError]] = {
    404: NotFound, 409: Conflict, 502: ServerUnreachable, 503: ServerUnreachable, 504: ServerUnreachable,
}
#: Exception class by API error code, where the code is more specific than the status.
CODE_ERRORS: dict[str, type[WireError]] = {"claim_conflict": ClaimRejected}
#: Next steps printed under some errors.
HINTS = {
    "ambiguous": "qualify the id with its repo: <repo>:<id> (e.g. shop:bd-12)",
    "unauthorized": "run `wire init` again in this worktree",
    "cycle": "see the graph with `wire deps ID`",
    "not_held": "the beads you hold: `wire mine`",
    "rate_limited": "too many calls too fast: wait and retry; a loop calling wire needs a pause",
}


def error_from_response(status: int, payload: Any) -> WireError:
    """Turn an API error answer (`{"error": {"code", "message", ...}}`) into its exception."""
    body = payload.get("error") if isinstance(payload, dict) else None
    details = dict(body) if isinstance(body, dict) else {}
    code = str(details.pop("code", None) or f"http_{status}")
    message = str(details.pop("message", None) or f"the server answered HTTP {status}")
    cls = CODE_ERRORS.get(code) or STATUS_ERRORS.get(status, WireError)
    return cls(message, code=code, details=details, hint=HINTS.get(code) or _suggestions(details, message))


def _suggestions(details: dict[str, Any], message: str) -> str | None:
    """`did you mean: bob, bobby` from an answer's `suggestions` (unknown alias), unless the
    message already says it."""
    names = details.get("suggestions")
    if isinstance(names, list) and names and "did you mean" not in message.lower():
        return "did you mean: " + ", ".join(str(n) for n in names)
    return None

