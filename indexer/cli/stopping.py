"""Stopping long work on SIGINT/SIGTERM/SIGHUP: finish the batch in flight, then stop.

A service manager sends SIGTERM to every process of the group; decoders ignore it (see
`decoders`), and the main process sets a stop event, so nothing is recorded as failed
because of a stop and everything committed stays for the next run.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger("dtindex")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Set `stop` on a stop signal; yields the signals received, first first."""
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not received:
            log.info("%s: finishing the batch in flight", signal.Signals(signum).name)
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
