"""The auto-reserve header: every authenticated request may carry `X-Wire-Changed` (the worktree's
modified files, sent by the CLI); `authenticate` (web/common.py) hands it to `auto_reserve_from_header`
and puts the conflicts in the banner. The reservation routes themselves are in web/locks.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import g, request
from marshmallow import Schema, ValidationError, fields, validate

from store import Store, reservations
from web.schemas.locks import conflicts

#: Request header with the caller's modified paths (a JSON array of strings), and its "cut" flag.
CHANGED_HEADER = "X-Wire-Changed"
TRUNCATED_HEADER = "X-Wire-Changed-Truncated"
#: `X-Wire-Changed` as the WSGI environ names it: read there, since most calls send none and a missing
#: header through `request.headers` costs a KeyError raised and caught, on every request
CHANGED_ENVIRON = "HTTP_X_WIRE_CHANGED"

#: A path or glob: no NUL (it separates the workspace from the pattern in Redis).
Pattern = fields.Str(validate=[validate.Length(min=1, max=reservations.MAX_PATTERN),
                               validate.Regexp(r"^[^\x00]*$", error="contains a NUL character")])
#: 1 to MAX_PATTERNS of them.
Some = validate.Length(min=1, max=reservations.MAX_PATTERNS)


class ChangedSchema(Schema):
    """The auto-reserve header: at most MAX_PATTERNS paths (the CLI caps its list and says so)."""

    paths = fields.List(Pattern, validate=validate.Length(max=reservations.MAX_PATTERNS))


changed_schema = ChangedSchema()


def auto_reserve_from_header(st: Store) -> list[dict[str, Any]]:
    """Apply the caller's `X-Wire-Changed` list (if sent) to its automatic reservations; the conflicts.

    A malformed header is ignored (logged): it must never fail the request it rides on.
    """
    raw = request.environ.get(CHANGED_ENVIRON)
    if raw is None or g.get("ws") is None:
        return []
    try:
        paths = changed_schema.load({"paths": json.loads(raw)})["paths"]
    except (ValueError, ValidationError, RecursionError):  # `[[[[...`: the parser's own depth limit
        logging.getLogger("beadwire.web").info("ignoring a malformed %s header", CHANGED_HEADER)
        return []
    complete = request.headers.get(TRUNCATED_HEADER, "") != "1"
    found: list[dict[str, Any]] = conflicts.dump(reservations.auto_reserve(st, g.ws, paths, complete))
    return found
