"""cProfile over every Python thread of this process, for the benchmarks."""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


def profiled(action: Callable[[], object], out: TextIO) -> pstats.Stats:
    """Profile `action` in every Python thread of this process (not in its children),
    charging each function the CPU time of its thread (`time.thread_time`): the question
    is the main process's CPU a picture, and a wall clock would charge it the waits on
    decoders too, more of them the busier the machine.

    Python 3.11: one profiler per thread, started by the thread itself, added up after.
    From 3.12 cProfile rides on sys.monitoring, where one profiler already hears every
    thread (and a second cannot start), so there the main one is all there is, and calls
    made in different threads at once may be charged to one another.
    """
    profiles = [cProfile.Profile(time.thread_time)]

    def start_in_thread(*_: object) -> None:
        profile = cProfile.Profile(time.thread_time)
        try:
            profile.enable()
        except ValueError:  # another profiler already hears this thread
            return
        profiles.append(profile)

    if sys.version_info < (3, 12):
        threading.setprofile(start_in_thread)
    profiles[0].enable()
    try:
        action()
    finally:
        profiles[0].disable()
        threading.setprofile(None)  # type: ignore[arg-type]  # typeshed: no None
    stats = pstats.Stats(profiles[0], stream=out)
    for profile in profiles[1:]:
        stats.add(profile)
    return stats
