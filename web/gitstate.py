"""The `X-Wire-Git` request header: a claim holder's git state, sent by the CLI on every call while
its worktree holds claims (cli/gitstate.py), kept with presence (store/gitstate.py).

Compact JSON, at most `MAX_GIT_HEADER` bytes: `branch`, `head`, `base` (the default branch it is
compared with), `ahead`, `behind`, `commits` ([{sha, bead, subject, ts}], at most 20: the commits
since each claim whose messages name its bead) and `idle` (seconds since this worktree last ran a
command or changed a file). A header that is too long, not JSON or not of that shape is ignored:
presence rides on every call, and the command the agent ran must not fail for it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from store.gitstate import MAX_COMMITS
from store.util import unstorable_text

GIT_HEADER = "X-Wire-Git"
#: Header size cap (bytes): 20 commits with 72-character subjects fit.
MAX_GIT_HEADER = 4096
_SHA = validate.Regexp(r"^[0-9a-f]{4,40}$")
_COUNT = validate.Range(min=0, max=10_000_000)
log = logging.getLogger("beadwire.gitstate")


class CommitSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    sha = fields.Str(required=True, validate=_SHA)
    bead = fields.Str(required=True, validate=validate.Length(min=1, max=520))
    subject = fields.Str(load_default="", validate=validate.Length(max=200))
    ts = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                      validate=validate.Range(min=0, max=1e11))


class GitStateSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    branch = fields.Str(load_default="", validate=validate.Length(max=200))
    head = fields.Str(load_default="", validate=validate.Regexp(r"^([0-9a-f]{4,40})?$"))
    base = fields.Str(load_default="", validate=validate.Length(max=200))
    ahead = fields.Int(load_default=0, strict=True, validate=_COUNT)
    behind = fields.Int(load_default=0, strict=True, validate=_COUNT)
    commits = fields.List(fields.Nested(CommitSchema), load_default=list,
                          validate=validate.Length(max=MAX_COMMITS))
    idle = fields.Int(load_default=0, strict=True, validate=validate.Range(min=0, max=10**9))


git_state_schema = GitStateSchema()


#: The header as the WSGI environ names it (what `request.headers.get(GIT_HEADER)` looks up).
GIT_ENVIRON = "HTTP_X_WIRE_GIT"


def git_from_header() -> dict[str, Any] | None:
    """The caller's validated git state, or None when it sent none or one we ignore (see above)."""
    return git_from_environ(request.environ)


def git_from_environ(environ: dict[str, Any]) -> dict[str, Any] | None:
    """`git_from_header` of a request's WSGI environ (read once by the caller, web/common.py)."""
    raw = environ.get(GIT_ENVIRON)
    if raw is None:
        return None
    return parse_git(raw)


def parse_git(raw: str) -> dict[str, Any] | None:
    """`raw` header value -> git state; None (ignored) when oversize, not JSON, or of the wrong shape."""
    if len(raw.encode("utf-8", "replace")) > MAX_GIT_HEADER:
        log.debug("%s ignored: longer than %d bytes", GIT_HEADER, MAX_GIT_HEADER)
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or unstorable_text(data):
            return None
        return git_state_schema.load(data)
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        log.debug("%s ignored: %s", GIT_HEADER, exc)
        return None
