"""Wall time of one-shot `wire` commands from a regular (non-editable) install, as ratios to
`python3 -c pass`.

    python3 -m bench.cli_startup                                  # this checkout (~1 min)
    python3 -m bench.cli_startup --source before=/tmp/old --source after=.   # two trees, one run

Each `--source NAME=DIR` is installed with `pip install --no-deps DIR` (a wheel built in pip's isolated build
environment, so it fetches setuptools and wheel; not editable) into its
own throwaway venv made with `--system-site-packages`, so the dependencies are the machine's and only
beadwire's code differs. One `wire serve` (this checkout's, tests/servers.py) answers every command. The
commands are run round-robin (every command of every source once per round), so a load spike on this
shared machine hits all of them alike; `python3 -c pass` is the same venv's interpreter, measured in the
same rounds. Prints a markdown table: median wall ms and median ÷ `python3 -c pass` (pooled over the
venvs), median CPU ms (user + system of the process and its children, from `wait4`: less moved by the
machine's load than wall time), and from one more run of each row the modules it imported
(`PYTHONPROFILEIMPORTTIME`) and the git processes it started (a `git` on PATH that counts them).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers import start_stack

ROOT = Path(__file__).resolve().parent.parent


#: Row name -> (program, argv): "wire" is the venv's console script (`{bead}` is a fresh bead each run),
#: "python" the venv's interpreter, "git" the machine's git in the agent's repo.
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "python3 -c pass": ("python", ["-c", "pass"]),
    "python3 -c 'import click' (floor)": ("python", ["-c", "import click"]),
    "git status (one of the git runs)": ("git", ["status", "--porcelain", "-z", "--untracked-files=no"]),
    "wire --help": ("wire", ["--help"]),
    "wire whoami": ("wire", ["--json", "whoami"]),
    "wire status": ("wire", ["--json", "status"]),
    "wire ready": ("wire", ["--json", "ready"]),
    "wire claim": ("wire", ["--json", "claim", "{bead}"]),
    "wire mail send": ("wire", ["--json", "mail", "send", "cli-agent", "bench mail from the CLI"]),
}
#: The rows the target is about (issue 19): a command an agent runs.
TARGET_ROWS = ("wire whoami", "wire status", "wire ready", "wire claim", "wire mail send")
#: The issue-19 target: a command's median at most this many times `python3 -c pass`, and at most MAX_MS.
MAX_RATIO = 2.2
MAX_MS = 100.0


def make_venv(name: str, source: Path, tmp: Path) -> Path:
    """A venv seeing the machine's packages, with `source` installed into it as a regular wheel."""
    venv, copy = tmp / f"venv-{name}", tmp / f"src-{name}"
    # a copy: pip's in-tree build would leave build/ and *.egg-info in the source tree
    skipped = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".wire")
    shutil.copytree(source, copy, ignore=skipped)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(copy)],
        check=True, capture_output=True,
    )  # fmt: skip
    # the venv's own copy wins over the machine's editable install (its finder comes after PathFinder)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import cli; print(cli.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp,
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(venv)):
        raise SystemExit(f"{name}: `cli` imports from {where}, not from the venv")
    return venv


def git_repo(path: Path) -> None:
    path.mkdir()
    for args in (["init", "-q"], ["remote", "add", "origin", "https://github.com/bench/cli-repo.git"],
                 ["config", "user.name", "Bench"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


#: {source: {row: [wall ms...]}}, the same for CPU ms, and {source: {row: (imports, git runs)}}.
Times = dict[str, dict[str, list[float]]]
Census = dict[str, dict[str, tuple[int | None, int | None]]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append", metavar="NAME=DIR", help="a tree to install (repeatable)")
    ap.add_argument("--runs", type=int, default=15, help="rounds (default 15)")
    ap.add_argument("--json-out", metavar="FILE", help="also write the raw figures here")
    opts = ap.parse_args()
    sources = [s.partition("=")[::2] for s in (opts.source or [f"this={ROOT}"])]
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp_s:
        tmp = Path(tmp_s)
        venvs = {name: make_venv(name, Path(src).resolve(), tmp) for name, src in sources}
        stack = start_stack(tmp)
        try:
            lat, cpu, census = run(venvs, stack.url, opts.runs, tmp)
        finally:
            stack.stop()
    report(lat, cpu, census, opts.runs)
    if opts.json_out:
        figures = {"wall_ms": lat, "cpu_ms": cpu, "census": census}
        Path(opts.json_out).write_text(json.dumps(figures, indent=1))


def git_counter(tmp: Path) -> tuple[str, Path]:
    """A PATH whose first `git` notes each run in a file, then runs the real one."""
    shim, log = tmp / "git-shim", tmp / "git-runs"
    shim.mkdir()
    real = shutil.which("git") or "git"
    (shim / "git").write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{real}" "$@"\n')
    (shim / "git").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ.get('PATH', '')}", log


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall ms, CPU ms of the process and its children, the run) of one command."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # not `wait`: it gives no rusage
        wall = (time.perf_counter() - t) * 1000
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        texts = [f.read().decode("utf-8", "replace") for f in (out, err)]
    cpu = (usage.ru_utime + usage.ru_stime) * 1000
    return wall, cpu, subprocess.CompletedProcess(cmd, proc.returncode, *texts)


def run(venvs: dict[str, Path], url: str, runs: int, tmp: Path) -> tuple[Times, Times, Census]:
    """Wall and CPU milliseconds per source and row, `runs` each, round-robin, then one counted run of
    each; a failing command stops the bench."""
    env = {**os.environ, "WIRE_URL": url, "WIRE_CONFIG_DIR": str(tmp / "wire-config"), "NO_COLOR": "1"}
    for k in ("WIRE_JSON", "PYTHONPATH", "WIRE_AS", "WIRE_HUMAN_TOKEN"):
        env.pop(k, None)
    repos = {}
    beads: dict[str, list[str]] = {}
    for name, venv in venvs.items():
        repos[name] = tmp / f"repo-{name}"
        git_repo(repos[name])
        wire = str(venv / "bin" / "wire")
        call = [wire, "--json", "init", "--project", f"bench{name}", "--alias", "cli-agent"]
        subprocess.run(call, cwd=repos[name], env=env, check=True, capture_output=True)
        beads[name] = []
        for n in range(runs + 7):  # some for `ready` to list, one per claim (+ warm-up, + the counted run)
            done = subprocess.run([wire, "--json", "create", f"cli bead {n}"], cwd=repos[name], env=env,
                                  check=True, capture_output=True, text=True)  # fmt: skip
            beads[name].append(json.loads(done.stdout)["id"])
    lat: Times = {name: {row: [] for row in COMMANDS} for name in venvs}
    cpu: Times = {name: {row: [] for row in COMMANDS} for name in venvs}
    census: Census = {name: {} for name in venvs}
    counting, git_runs = git_counter(tmp)
    for round_ in range(runs + 2):  # round 0 warms the page cache, the last one counts (not timed)
        last = round_ == runs + 1
        for row, (program, argv) in COMMANDS.items():
            for name, venv in venvs.items():
                args = [beads[name].pop() if a == "{bead}" else a for a in argv]
                cmd = ["git" if program == "git" else str(venv / "bin" / program), *args]
                git_runs.write_text("")
                run_env = {**env, "PYTHONPROFILEIMPORTTIME": "1", "PATH": counting} if last else env
                wall, used, done = timed(cmd, repos[name], run_env)
                if done.returncode != 0:
                    raise SystemExit(f"{name}: {' '.join(cmd)} exited {done.returncode}: "
                                     f"{done.stderr[-400:]}")
                if last:
                    imports = done.stderr.count("import time:") - 1  # less the header line
                    started = len(git_runs.read_text().splitlines())
                    census[name][row] = (None, None) if program == "git" else (imports, started)
                elif round_:
                    lat[name][row].append(wall)
                    cpu[name][row].append(used)
    return lat, cpu, census


def report(lat: Times, cpu: Times, census: Census, runs: int) -> None:
    """The table; the ratio's base is `python3 -c pass` over every source's venv (one interpreter; pooled,
    because a median of one venv's few runs moves by several ms on a loaded machine)."""
    names = list(lat)
    base = statistics.median(ms for n in names for ms in lat[n]["python3 -c pass"])
    cpu_base = statistics.median(ms for n in names for ms in cpu[n]["python3 -c pass"])
    print(f"median of {runs} runs each, round-robin; ratio = median ÷ `python3 -c pass` ({base:.1f} ms wall, "
          f"{cpu_base:.1f} ms CPU, medians over {len(names)} venv(s) in the same rounds); CPU = user + "
          "system of the process and its children; imports and git runs from one more run\n")
    columns = ("median ms", "ratio", "CPU ms", "CPU ratio", "imports", "git runs")
    print("| command | " + " | ".join(f"{n}: {c}" for n in names for c in columns) + " |")
    print("|---|" + "---|" * len(columns) * len(names))
    for row in COMMANDS:
        cells = []
        for n in names:
            med, used = statistics.median(lat[n][row]), statistics.median(cpu[n][row])
            imports, git = census[n][row]
            cells += [f"{med:.1f}", f"{med / base:.2f}", f"{used:.1f}", f"{used / cpu_base:.2f}",
                      *("–" if count is None else str(count) for count in (imports, git))]
        print(f"| `{row}` | " + " | ".join(cells) + " |")
    for n in names:
        worst = max(TARGET_ROWS, key=lambda r: statistics.median(lat[n][r]))
        med = statistics.median(lat[n][worst])
        ok = med <= MAX_MS and med <= MAX_RATIO * base
        print(f"\n{n}: slowest command `{worst}` {med:.1f} ms = {med / base:.2f}× `python3 -c pass` "
              f"(target ≤ {MAX_MS:.0f} ms and ≤ {MAX_RATIO}×): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
