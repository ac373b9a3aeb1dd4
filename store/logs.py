"""Logging set-up, once per process (web app, actors, clock): plain text lines or, with
`LOG_FORMAT=json`, one JSON object per line (`ts`, `level`, `logger`, `msg`, and for access logs
`method`, `path`, `status`, `ms`, `request_id`).

Secrets never reach a log: messages are scrubbed of bearer tokens and project keys, and the
access log names a route's template instead of its path when the path carries a token or key.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from store.config import Settings
from store.util import PROJECT_KEY_PREFIX, WORKSPACE_TOKEN_PREFIX

#: The access log (one record per answered request; on at INFO with `LOG_FORMAT=json`).
ACCESS_LOGGER = "beadwire.access"
#: Extra record attributes copied into a JSON line (set with `extra={...}`).
FIELDS = ("method", "path", "status", "ms", "request_id", "process_kind")
#: Bearer credentials and anything shaped like a beadwire project key or workspace token.
_SECRET = re.compile(r"(?i)(bearer\s+)\S+|"
                     rf"\b(?:{re.escape(PROJECT_KEY_PREFIX)}|{re.escape(WORKSPACE_TOKEN_PREFIX)})[A-Za-z0-9_\-]{{8,}}")


def scrub(text: str) -> str:
    """`text` with credentials replaced by `[redacted]`."""
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; exceptions go in `exc` (scrubbed like the message)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                   + f".{int(record.msecs):03d}Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for name in FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class ScrubFilter(logging.Filter):
    """Scrubs plain-text records in place (the JSON formatter scrubs its own output)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(settings: Settings, kind: str = "", replace_kind: bool = False) -> None:
    """Set the root logger's level and format; idempotent. `kind` (web, worker, clock) tags JSON lines.

    Handlers already installed (Dramatiq's worker pipes its children's records to the parent through
    them) keep their streams and get the JSON formatter; without any, one goes to stderr.
    """
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a process that set up logging (Dramatiq) keeps its level
        root.setLevel(settings.log_level)
        root.addHandler(logging.StreamHandler(sys.stderr))
    json_lines = settings.log_format == "json"
    handlers = list(root.handlers)
    if json_lines:
        # gunicorn's own logger does not propagate: give it our handlers so its lines are JSON too
        for name in ("gunicorn.error",):
            logging.getLogger(name).handlers = handlers
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    for handler in handlers:
        if json_lines:
            handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
        tagged = [f for f in handler.filters if isinstance(f, _KindFilter)]
        if kind and (replace_kind or not tagged):  # the first kind wins: the web app imports actors too
            for old in tagged:
                handler.removeFilter(old)
            handler.addFilter(_KindFilter(kind))


class _KindFilter(logging.Filter):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.setdefault("process_kind", self.kind)
        return True
