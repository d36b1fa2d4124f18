"""`scan --ray` in windows: the cluster works on one window of decided orders while the
driver looks at and decides the next, so the first results arrive after the first
window, not after the whole gallery has been read and hashed.

A window is one Ray Data execution over a fixed list of orders (Ray Data takes its input
whole). Its result blocks are pulled by a thread of the driver into a short queue; the
driver's own thread hands them to the steps (every index write stays in that thread,
between groups of decisions and while waiting for the window's end). Each execution
starts its actors and loads the models again, about 3 s on 2 cores (benchmarks/
ray_fanout.py: 400 pictures in windows of 32 to 256 took 31 ms a picture against 9 in
one), so windows start at `FIRST` orders, which a driver looks at in seconds, and double
up to `LARGEST`: the orders held in memory stay bounded whatever the gallery's size.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from indexer.pipeline.flow import STOP_CHECK_S
from indexer.pipeline.remote import Columns

log = logging.getLogger("dtindex")
FIRST = 1024  # orders in the first window
LARGEST = 16384  # orders a window holds at most: about 3 MB of orders in the driver
# With `--ship-files` a window holds its files' bytes too (in the driver and in Ray's
# object store): about 1 GB for 1 MB pictures
LARGEST_SHIPPED = 1024
_QUEUED = 4  # result blocks waiting for the driver's thread; Ray holds back the rest
_END = object()


def sizes(first: int = FIRST, largest: int = LARGEST) -> Iterator[int]:
    """How many orders each window takes: `first`, doubling up to `largest`."""
    size = max(1, first)
    while True:
        yield min(size, largest)
        size *= 2


class Window:
    """One window's execution, pulled in a thread of its own; its blocks are taken in the
    caller's thread with `ready` (what has come) or `rest` (up to the end).

    An execution that fails once `stopping` holds ends the window quietly: a stop signal
    sent to the process group (a service manager's SIGTERM, Ctrl-C in a terminal) also
    reaches a local Ray's workers, and their deaths are the stop's, not a cluster fault,
    so the scan ends as stopped (128+N, a rerun resumes) rather than failed."""

    def __init__(
        self,
        number: int,
        blocks: Iterable[Columns],
        orders: list[Any],
        stopping: Callable[[], bool],
    ) -> None:
        self.number, self.orders = number, orders
        self._blocks, self._stopping = blocks, stopping
        self._queue: queue.Queue[object] = queue.Queue(_QUEUED)
        self._abandoned = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._pull, name=f"ray-window-{number}")
        self._thread.daemon = True  # an abandoned execution never holds the driver's exit
        self._thread.start()

    def _pull(self) -> None:
        iterator = iter(self._blocks)
        try:
            for block in iterator:
                if not self._put(block):
                    return
            self._put(_END)
        except BaseException as exc:  # a failed execution: raised in the caller's thread
            self._put(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # an abandoned execution stops its actors now, not at collection

    def _put(self, item: object) -> bool:
        while not self._abandoned.is_set():
            try:
                self._queue.put(item, timeout=STOP_CHECK_S)
                return True
            except queue.Full:
                continue
        return False

    def ready(self, deliver: Callable[[Columns], None]) -> None:
        """Hand over the blocks that have come, without waiting."""
        while not self._ended:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._take(item, deliver)

    def rest(self, deliver: Callable[[Columns], None]) -> bool:
        """Hand over every block up to the end; False when the stop came first."""
        while not self._ended:
            if self._stopping():
                return False
            try:
                item = self._queue.get(timeout=STOP_CHECK_S)  # a signal cannot wake the wait
            except queue.Empty:
                continue
            self._take(item, deliver)
        return True

    def _take(self, item: object, deliver: Callable[[Columns], None]) -> None:
        if item is _END:
            self._ended = True
        elif isinstance(item, BaseException):
            self._ended = True
            if not self._stopping():
                raise item
            log.debug("ray: window %d ended with the stop: %s", self.number, item)
        else:
            assert isinstance(item, dict)
            deliver(item)

    def abandon(self) -> None:
        """Stop pulling (a stop, or an error in the driver): what was not handed over is
        done again by a later scan, as the claims of a stopped local scan are."""
        self._abandoned.set()
        self._thread.join(timeout=5)
