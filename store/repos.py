"""Repo identity: clones and worktrees of one remote are the same repo."""

from __future__ import annotations

import re

from store.errors import InvalidInput

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


def normalise_origin(origin: str) -> str:
    """`git@github.com:org/x.git`, `https://github.com/org/x`, `ssh://git@github.com/org/x.git`
    all become `github.com/org/x`.

    Raises:
        InvalidInput: the origin is empty or has no path.
    """
    text = origin.strip()
    if not text:
        raise InvalidInput("repo origin is empty")
    if "://" in text:
        rest = text.split("://", 1)[1]
        hostpart, _, path = rest.partition("/")
        host = hostpart.rsplit("@", 1)[-1]
        if text.startswith("file://"):
            host, path = "local", rest.lstrip("/")
    elif (match := _SCP_LIKE.match(text)) and "/" not in match.group(1):
        host, path = match.group(1), match.group(2)
    else:
        host, path = "local", text.lstrip("/")
    host = host.split(":", 1)[0].lower()  # drop a port: the same repo over another port
    path = path.strip("/")
    path = path.removesuffix(".git")
    path = path.rstrip("/")
    if not path:
        raise InvalidInput(f"repo origin {origin!r} has no path")
    return f"{host}/{path}"


def repo_name(canonical: str) -> str:
    """The short name of a repo (`github.com/acme/shop` -> `shop`)."""
    return canonical.rsplit("/", 1)[-1]
