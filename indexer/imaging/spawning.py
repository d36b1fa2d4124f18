"""Starting a worker process (a decoder, the score writer) that runs none of the caller's code.

multiprocessing's `spawn` (and `forkserver`) make each child import the parent's main
module again. The library is called from programs that cannot stand that: a script
without an `if __name__ == "__main__":` guard runs itself again in every child (which
fails in multiprocessing's bootstrap check), one read from standard input (`python -`)
makes each child try to open `<stdin>` and die. So a worker is a fresh interpreter
(`python -c _BOOT`, the parent's executable) that takes the parent's `sys.path` and then
the function to run from its end of a socketpair, and imports nothing else. Like a spawned
child it reports the shared memory it attaches to the parent's resource tracker (whose
pipe it inherits), so the tracker unlinks the rings if the parent is killed.

A service manager (and Ctrl-C) signals the whole process group. A worker starts with
SIGINT, SIGTERM and SIGHUP blocked (the mask is inherited through fork and exec) until it
has set them to be ignored (`ignore_stop_signals`). In the parent, blocking them in the main
thread is not enough: another thread (ONNX Runtime's pool) takes the signal, and Python
runs its handler in the main thread between two statements of the start, after the child
exists but before it has been sent what to run. So Python's handlers are held too, and
the signals handed to them once it is started.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

# What stops a run: Ctrl-C, a service manager's SIGTERM, a closed terminal's SIGHUP.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# A worker's whole program before it can import indexer: argv is (pipe fd, tracker fd).
_BOOT = (
    "import sys\n"
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "try:\n"
    "    sys.path[:] = conn.recv()\n"
    "except (EOFError, OSError):\n"
    "    sys.exit(0)  # the parent went away (killed) before saying what to run\n"
    "from indexer.imaging.spawning import run_worker\n"
    "run_worker(conn, int(sys.argv[2]))\n"
)
# In a worker's command line: how tests (and `ps`) tell dtindex's workers.
MARK = "indexer.imaging.spawning"


class Worker:
    """A started worker process, as multiprocessing's Process is seen by its parent."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """None while it runs; minus the signal's number if one ended it."""
        return self._popen.poll()

    def ended(self) -> str:
        """How it ended, for a message: "signal SIGKILL", "exit 1" (waited for up to 5 s)."""
        self.join(5)
        code = self.exitcode
        return f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)


def start_worker(target: Callable[..., None], *args: Any) -> tuple[Worker, Connection]:
    """A worker running `target(connection, *args)`, and the parent's end of its pipe.

    `target` and `args` are pickled (a module-level function, plain values)."""
    from multiprocessing import resource_tracker, spawn

    # The resource tracker must run first: starting it unblocks SIGINT and SIGTERM in
    # the calling thread.
    tracker: int = resource_tracker.getfd()  # type: ignore[assignment]
    ours, theirs = multiprocessing.Pipe()
    command = [spawn.get_executable(), "-c", _BOOT, str(theirs.fileno()), str(tracker)]

    def start() -> subprocess.Popen[bytes]:
        # What to run is sent while the stop signals are still held: a Ctrl-C that came
        # during the start stops the parent only once the worker knows what to run (and
        # then how to see its parent go), never while it waits for its program.
        popen = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(), tracker)
        )
        with contextlib.suppress(OSError):  # it died at once: its parent sees it on reading
            ours.send(list(sys.path))
            ours.send((target, args))
        return popen

    try:
        popen = _held(start)
    finally:
        theirs.close()
    return Worker(popen), ours


def run_worker(conn: Connection, tracker: int) -> None:
    """The worker's side of `start_worker` (after `_BOOT` has set `sys.path`)."""
    from multiprocessing import resource_tracker

    # What multiprocessing's own spawned child does with the tracker's pipe it inherits.
    resource_tracker._resource_tracker._fd = tracker  # type: ignore[attr-defined]
    try:
        target, args = conn.recv()
    except (EOFError, OSError):
        return  # the parent went away (killed) before saying what to run
    target(conn, *args)


def ignore_stop_signals() -> None:
    """In a worker, first thing: the stop signals a process group gets are ignored (its
    parent decides how to stop, and kills it), and only then unblocked, so one sent
    while the worker started (blocked since: see above) is dropped too."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _held(start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """`start()` with the stop signals held, then delivered in order."""
    held: list[int] = []
    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def hold(signum: int, _frame: FrameType | None) -> None:
            held.append(signum)

        handlers = {signum: signal.signal(signum, hold) for signum in STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for signum in held:
            signal.raise_signal(signum)
