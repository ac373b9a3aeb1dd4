"""A command's own git runs (`git status` every command, the git state of a claim holder at times).

`os.posix_spawnp` and a pipe, not `subprocess`: that module, with the `selectors` and `signal` it
loads, costs each command about as much as the git run itself (bench/cli_startup.py). Where there is
no posix_spawn (Windows), `subprocess` does it.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

#: Seconds a git run of a command may take before it is killed (and its answer treated as unknown).
GIT_TIMEOUT = 30.0


def run_git(root: Path, *args: str, timeout: float = GIT_TIMEOUT) -> bytes | None:
    """The output of `git ARGS` in the worktree at `root` with optional locks off (it never writes the
    index, nor waits for a git command running at the same time), or None when git is missing, fails,
    or runs longer than `timeout` seconds (then it is killed)."""
    argv, env = ["git", "-C", str(root), *args], {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    if not hasattr(os, "posix_spawnp"):
        return _run_subprocess(argv, env, timeout)
    read, write = os.pipe()
    try:
        pid = os.posix_spawnp("git", argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, write, 1), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    except OSError:
        os.close(read)
        return None
    finally:
        os.close(write)
    try:
        out = _read_until_closed(read, timeout)
    finally:
        os.close(read)
    if out is None:
        os.kill(pid, 9)  # SIGKILL (no `signal` module: start-up time)
    _, status = os.waitpid(pid, 0)
    return out if out is not None and status == 0 else None


def _read_until_closed(fd: int, timeout: float) -> bytes | None:
    """All a pipe gives until its writer closes it, or None after `timeout` seconds."""
    poller, out, deadline = select.poll(), bytearray(), time.monotonic() + timeout
    poller.register(fd, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
        chunk = os.read(fd, 65536)
        if not chunk:
            return bytes(out)
        out += chunk
    return None


def _run_subprocess(argv: list[str], env: dict[str, str], timeout: float) -> bytes | None:
    import subprocess  # noqa: PLC0415 - only where there is no posix_spawn

    try:
        done = subprocess.run(argv, capture_output=True, check=False, timeout=timeout, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
