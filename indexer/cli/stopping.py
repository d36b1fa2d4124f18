"""Stopping on signals: Ctrl-C at any moment, and long work that finishes its batch first.

From the first line of `main`, SIGINT raises KeyboardInterrupt wherever the main thread
is (an import, a model loading) and is remembered (`Interrupts`). Around long work,
SIGINT/SIGTERM/SIGHUP only set a stop event (`stop_on_signals`): a service manager sends
SIGTERM to every process of the group; decoders ignore it (see `imaging.decoder`), the
batch in flight is finished, nothing is recorded as failed because of the stop, and
everything committed stays for the next run.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from indexer.core.stopping import STOP_SIGNALS

log = logging.getLogger("dtindex")


class Interrupts:
    """Ctrl-C raises KeyboardInterrupt, as Python's own handler does, and is remembered:
    whatever the interrupted code raises instead (ONNX Runtime's import turns it into
    an ImportError) the run still ends as interrupted."""

    def __init__(self) -> None:
        self.received = False
        self._previous: object = None

    def _on_sigint(self, _signum: int, _frame: FrameType | None) -> None:
        self.received = True
        raise KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]


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
