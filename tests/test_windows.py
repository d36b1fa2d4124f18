"""`pipeline.windows`: a window's execution that fails once the scan is stopping ends the
window quietly (a stop signal to the process group also kills a local Ray's workers: the
scan is stopped, 128+N, not failed); before the stop, the failure is the scan's error."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from indexer.pipeline.remote import Columns
from indexer.pipeline.windows import Window, sizes


class ActorDied(RuntimeError):
    pass


def _dying(stop: threading.Event | None) -> Iterator[Columns]:
    """One block, then the execution fails (after the stop came, when `stop` is given)."""
    yield {"seq": np.arange(2)}
    if stop is not None:
        stop.set()
    raise ActorDied("the actor died")


def _pulled(window: Window) -> None:
    window._thread.join(timeout=30)  # every block and the failure are queued
    assert not window._thread.is_alive()


def test_a_failure_after_the_stop_ends_the_window_quietly() -> None:
    stop = threading.Event()
    window = Window(1, _dying(stop), [], stop.is_set)
    _pulled(window)
    delivered: list[Columns] = []
    window.ready(delivered.append)  # the block, then the failure: no error, the window ended
    assert [list(b["seq"]) for b in delivered] == [[0, 1]]
    assert window.rest(delivered.append) is True and len(delivered) == 1


def test_a_failure_before_any_stop_is_raised() -> None:
    window = Window(1, _dying(None), [], lambda: False)
    _pulled(window)
    delivered: list[Columns] = []
    with pytest.raises(ActorDied):
        window.ready(delivered.append)
    assert len(delivered) == 1


def test_window_sizes_double_up_to_the_largest() -> None:
    assert [s for _, s in zip(range(6), sizes(3, 20), strict=False)] == [3, 6, 12, 20, 20, 20]
