"""The clock: enqueues the periodic sweeps. A process of its own in the Procfile (`python -m actors.clock`),
a thread of the worker process under `wire serve` (`python -m actors.run --clock`)."""

from __future__ import annotations

import logging
import signal
import threading

from actors import configure, escalations, outbox, sweeps
from store import logs
from store.config import Settings

#: (actor, period in seconds)
SCHEDULE = (
    (outbox.redeliver_pending, 5),
    (sweeps.expire_presence, 60),
    (sweeps.reap_stale_claims, 60),
    (sweeps.notice_idle_claims, 60),
    (sweeps.expire_reservations, 15),
    (escalations.sweep_escalations, 10),
    (sweeps.remind_stuck_mail, 300),
    (sweeps.purge_history, 3600),
)

log = logging.getLogger("beadwire.clock")


def run(stop: threading.Event) -> None:
    """Send each sweep when its period has passed, until `stop` is set."""
    tick = 0
    while not stop.is_set():
        for actor, period in SCHEDULE:
            if tick % period == 0:
                try:
                    actor.send()
                except Exception:
                    # tagged as the clock's also where it runs inside the worker process
                    log.warning("could not enqueue %s", actor.actor_name, exc_info=True,
                                extra={"process_kind": "clock"})
        tick += 1
        stop.wait(1.0)


def main() -> None:
    """The clock's entry point: the one place it reads the environment."""
    settings = Settings.from_env()
    logs.configure(settings, "clock")
    configure(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
