"""Imported by a `wire` process a test means to SIGKILL mid write-through (tests/test_cli_sync.py).

`KILLPOINT=write`: the temp file of the beads file is half written; `KILLPOINT=rename`: the new
file was just renamed into place (the base not yet written). There the process writes the file
named by `KILLPOINT_MARKER` and waits to be killed: the test acts on that event, never on a delay.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_point = os.environ.get("KILLPOINT", "")
_marker = Path(os.environ.get("KILLPOINT_MARKER", os.devnull))
_write, _replace = os.write, os.replace


def _stop_here() -> None:
    _marker.write_text(_point)
    threading.Event().wait()  # until SIGKILL


def _half_write(fd: int, data) -> int:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = ""
    if _point == "write" and Path(target).name.startswith(".issues.jsonl."):
        _write(fd, bytes(data)[: max(1, len(data) // 2)])
        _stop_here()
    return _write(fd, data)


def _replace_then_stop(src, dst, *args, **kwargs) -> None:
    _replace(src, dst, *args, **kwargs)
    if _point == "rename" and str(dst).endswith("issues.jsonl"):
        _stop_here()


os.write = _half_write
os.replace = _replace_then_stop
