"""A one-shot `wire` command loads only what it needs (issue 19: start-up cost of the CLI).

Not timing-based: these tests look at which modules a real `wire` process imported. `wire --help`
lists every command from `cli.HELP` without importing one; a command against a real server loads no
server-side package and no `http.client`/`email`/`ssl` (the client speaks HTTP on a plain socket).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest

from cli import COMMANDS, HELP, cli
from cli.client import ServerUnreachable, http_transport

ROOT = Path(__file__).resolve().parent.parent
#: Top-level packages a CLI command never needs: the server's and its libraries, and what
#: `http.client` would drag in.
SERVER_SIDE = {"store", "web", "actors", "mcp", "pydantic", "peewee", "redis", "marshmallow", "flask",
               "werkzeug", "jinja2", "gevent", "dramatiq", "gunicorn", "orjson", "platformdirs", "sqlite3",
               "psycopg2", "apispec", "anyio", "httpx"}
HTTP_CLIENT = {"http", "email", "ssl"}
#: The pure, stdlib-only part of `store` the CLI shares with the server (the beads file's lines).
PURE_STORE = {"store", "store.merge", "store.util"}
#: Runs `wire ARGS` in-process; an atexit handler writes every imported module to $PROBE_OUT (`main()`
#: ends the process itself, after running the atexit handlers).
PROBE = """
import atexit, os, sys

def dump():
    with open(os.environ["PROBE_OUT"], "w") as out:
        out.write("\\n".join(sorted(sys.modules)))  # no json: whether the command loaded it is asked

atexit.register(dump)
from cli import main
main()
"""


def probe(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules a `wire ARGS` process imported (it must succeed)."""
    out = cwd.parent / "probe.txt"
    out.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env={**env, "PROBE_OUT": str(out)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(out.read_text().split("\n")), done


def top(modules: set[str]) -> set[str]:
    """The top-level packages of `modules`; `store` only for more than its pure part."""
    return {m.split(".")[0] for m in modules if m not in PURE_STORE}


def cli_env(tmp: Path, url: str = "http://127.0.0.1:9") -> dict[str, str]:
    env = {**os.environ, "WIRE_URL": url, "WIRE_CONFIG_DIR": str(tmp / "cfg"), "HOME": str(tmp / "home"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for var in ("WIRE_JSON", "WIRE_PROJECT_KEY", "WIRE_AS", "WIRE_HUMAN_TOKEN"):
        env.pop(var, None)
    return env


@pytest.mark.parametrize("limit", [20, 45, 70, 200])
def test_the_help_table_says_what_each_command_says(limit: int) -> None:
    """`wire --help` at any terminal width shows, for each command, what its own help would."""
    assert list(HELP) == list(COMMANDS)
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and not command.hidden
        derived = click.Command(name, help=HELP[name]).get_short_help_str(limit)
        assert derived == command.get_short_help_str(limit), name


def test_help_imports_no_command_module(tmp_path: Path) -> None:
    (tmp_path / "cwd").mkdir()
    modules, done = probe(["--help"], tmp_path / "cwd", cli_env(tmp_path))
    assert "claim " in done.stdout and "mail " in done.stdout and "human " in done.stdout
    assert ({m for m in modules if m.split(".")[0] == "cli"}
            == {"cli", "cli.errors", "cli.transport", "cli.output"})
    calls = {"hashlib", "subprocess", "json", "socket", "_socket"}  # what a call needs: none for --help
    assert top(modules) & (SERVER_SIDE | HTTP_CLIENT | calls) == set()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("startup-stack"), workers=1)
    yield server
    server.stop()


def git_shim(tmp_path: Path) -> tuple[str, Path]:
    """A PATH entry whose `git` notes each run in a file, then runs the real git."""
    shim, log = tmp_path / "shim", tmp_path / "git-runs"
    shim.mkdir()
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True)
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real.stdout.strip()} "$@"\n')
    (shim / "git").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ['PATH']}", log


def subcommand(args: list[str]) -> str:
    """`status` of `-C DIR -c x=y status ...`."""
    while args[0] in ("-C", "-c"):
        args = args[2:]
    return args[0]


def test_the_agent_commands_load_only_what_they_need_and_run_git_once(stack, tmp_path: Path) -> None:
    """whoami, status, ready, claim and mail send, as an agent runs them, against a real server: no
    server-side package, no `socket` (its enums) nor `hashlib` (OpenSSL), nothing of `store`; and one
    `git status` each, holding claims or not (HEAD and the default branch come from the ref files, what
    else the git state needs is kept for the commits it was worked out for: the first claim works it out)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    # the commit is older than any claim: a claim made within the commit's second would (rightly) have
    # its commits worked out again, one `git log` more, and the counts below would depend on the clock
    stamp = f"@{int(time.time()) - 3600} +0000"
    an_hour_ago = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    for args in (["init", "-q", "-b", "main"], ["remote", "add", "origin", "https://github.com/t/startup.git"],
                 ["config", "user.name", "T"], ["config", "user.email", "t@x"],
                 ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=an_hour_ago)
    env = cli_env(tmp_path, stack.url)
    probe(["--json", "init", "--project", "startup", "--alias", "ann"], repo, env)
    beads = [json.loads(probe(["--json", "create", f"bead {n}"], repo, env)[1].stdout)["id"] for n in (1, 2)]
    env["PATH"], runs = git_shim(tmp_path)
    once = ["status"]
    commands = [(["whoami"], once), (["status"], once), (["ready"], once),  # holding no claim
                (["claim", beads[0]], ["rev-list", "log", "status"]), (["claim", beads[1]], once),
                (["mail", "send", "ann", "a note to self"], once), (["whoami"], once), (["status"], once),
                (["ready"], once)]  # holding two
    for args, git_runs in commands:
        runs.write_text("")
        modules, _ = probe(["--json", *args], repo, env)
        loaded = {m.split(".")[0] for m in modules} & (SERVER_SIDE | HTTP_CLIENT)
        assert loaded | ({"hashlib", "socket", "store", "subprocess"} & set(modules)) == set(), args
        ran = [subcommand(run.split()) for run in runs.read_text().splitlines()]
        assert ran == git_runs, args
    claims = json.loads(probe(["--json", "whoami"], repo, env)[1].stdout)["claims"]
    assert set(beads) <= {c["bead"] for c in claims}


# -- the socket transport against canned answers (what gunicorn never sends, a proxy might) --

def canned(answer: bytes) -> str:
    """A one-shot server on loopback that reads a request head and sends `answer`, then closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(answer)
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/v1/x?a=1"


def test_a_chunked_answer_after_an_interim_one_is_read_whole() -> None:
    url = canned(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n"
                 b"X-Wire-Banner: b1\r\nX-Wire-Banner: b2\r\n\r\n4\r\n{\"a\"\r\n4;x=y\r\n:12}\r\n0\r\n\r\n")
    status, body, headers = http_transport("POST", url, b"{}", {"Accept": "application/json"}, 5)
    assert (status, body, headers["X-Wire-Banner"]) == (409, b'{"a":12}', "b2")


def test_an_answer_without_length_runs_to_the_close() -> None:
    status, body, _ = http_transport("GET", canned(b"HTTP/1.0 200 OK\r\n\r\nall of it"), None, {}, 5)
    assert (status, body) == (200, b"all of it")


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                                    b"SSH-2.0-x\r\n"])
def test_a_cut_or_garbled_answer_is_unreachable_and_worth_retrying(answer: bytes) -> None:
    with pytest.raises(ServerUnreachable) as caught:
        http_transport("GET", canned(answer), None, {}, 5)
    assert caught.value.retryable


def test_the_process_ends_at_once_with_its_exit_code_unless_a_thread_still_runs(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    usage = subprocess.run([sys.executable, "-c", "from cli import main; main()", "--no-such-option"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "No such option" in usage.stderr
    waits = ("import sys, threading, time\n"
             "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done', flush=True))).start()\n"
             "from cli import main\n"
             "sys.argv[1:] = ['--help']\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", waits], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Commands:" in done.stdout and done.stdout.endswith("thread done\n")
