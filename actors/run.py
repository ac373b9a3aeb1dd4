"""The worker as one process: Dramatiq's worker threads run here, and with `--clock` the clock beside them.

    python -m actors.run [--threads 4] [--shutdown-ms 25000] [--clock]

`dramatiq actors:from_env --processes 1` (the Procfile's worker) forks its worker from a supervising
process, and the clock (`python -m actors.clock`) is a process of its own: three interpreters with the
same imports. `wire serve` runs this instead, one process with both (issue 19, memory). It stops as
Dramatiq's worker process does: on SIGTERM, SIGINT or SIGHUP the clock stops sending, the worker
threads get `--shutdown-ms` to finish their messages (what is left goes back to its queue), and the
broker is closed; a second signal exits at once. Its log lines read as Dramatiq's.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

import dramatiq

from actors import clock, configure
from store import logs
from store.config import Settings

#: Dramatiq's CLI line format (`dramatiq.cli.LOGFORMAT`), so the worker logs as under `dramatiq`.
LOG_FORMAT = "[%(asctime)s] [PID %(process)d] [%(threadName)s] [%(name)s] [%(levelname)s] %(message)s"
#: Exit code after a second stop signal (Dramatiq's `RET_KILLED`).
EXIT_KILLED = 1
#: Seconds the clock thread gets to notice the stop (it wakes every second) before the broker closes.
CLOCK_JOIN_SECONDS = 3.0

log = dramatiq.get_logger("dramatiq", "WorkerProcess(0)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m actors.run", description="beadwire's worker (and clock)")
    ap.add_argument("--threads", type=int, default=4, help="worker threads (default: 4)")
    ap.add_argument("--shutdown-ms", type=int, default=25000,
                    help="milliseconds in-flight messages get to finish on stop (default: 25000)")
    ap.add_argument("--clock", action="store_true", help="also run the clock (the periodic sweeps)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """The entry point: the one place this process reads the environment."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    settings = Settings.from_env()
    logs.configure(settings, "worker")
    stop = _stop_on_signals()
    broker = configure(settings)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=args.threads)
    worker.start()
    ticker = threading.Thread(target=clock.run, args=(stop,), name="clock", daemon=True)
    if args.clock:
        ticker.start()
    log.info("Worker process is ready for action.")
    while not stop.wait(1.0):
        pass
    if ticker.is_alive():
        ticker.join(CLOCK_JOIN_SECONDS)
    worker.stop(timeout=args.shutdown_ms)
    broker.close()


def _stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM, SIGINT or SIGHUP; the second one exits with `EXIT_KILLED`."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            log.warning("Killing worker process...")
            sys.exit(EXIT_KILLED)
        log.info("Stopping worker process...")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handle)
    return stop


if __name__ == "__main__":
    main()
