"""Starting a decoder process with the stop signals held, so none lands mid-spawn.

A service manager (and Ctrl-C) signals the whole process group. A decoder starts with
SIGINT, SIGTERM and SIGHUP blocked (the mask is inherited through spawn) until it has
set them to be ignored (`decoder.serve`). In the parent, blocking them in the main
thread is not enough: another thread (ONNX Runtime's pool) takes the signal, and Python
runs its handler in the main thread between two statements of the spawn, after the
child exists but before it has been sent what to run; it then dies printing EOFError.
So Python's handlers are held too, and the signals handed to them once it is started.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

# What stops a run: Ctrl-C, a service manager's SIGTERM, a closed terminal's SIGHUP.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def start_held(process: Any) -> None:
    """`process.start()` with the stop signals held, then delivered in order."""
    from multiprocessing import resource_tracker

    # The resource tracker must run first: starting it unblocks SIGINT and SIGTERM in
    # the calling thread.
    resource_tracker.ensure_running()
    held: list[int] = []
    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def hold(signum: int, _frame: FrameType | None) -> None:
            held.append(signum)

        handlers = {signum: signal.signal(signum, hold) for signum in STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for signum in held:
            signal.raise_signal(signum)
