"""Decoding in worker processes, so a decoder that crashes or hangs cannot take a scan down.

Each worker decodes one picture at a time, sent as bytes (the scan reads and hashes a
file once, in the parent). A worker that dies (a segfault in a codec) or overruns the
per-picture time limit is replaced, and only that picture is recorded as failed.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from indexer.errors import DecodeError, Kind
from indexer.imaging.prepare import decode, fit
from indexer.settings import ModelSpec

FAULT_ENV = "DTINDEX_TEST_FAULTS"  # tests only: "crash-marker,hang-marker" bytes in a file


@dataclass(frozen=True)
class Target:
    """One model's input geometry: the picture is fitted once per target."""

    spec: ModelSpec
    height: int
    width: int


Result = tuple[list[NDArray[np.uint8]], tuple[int, int]]


def prepare_targets(data: bytes, targets: Sequence[Target], max_pixels: int) -> Result:
    """Decode once (JPEGs DCT-scaled to twice the largest input) and fit for each target."""
    largest = max(max(t.height, t.width) for t in targets)
    image, full = decode(data, max_pixels, draft_to=2 * largest)
    return [fit(image, t.spec, t.height, t.width) for t in targets], full


def _keep_freed_memory(limit: int = 256 << 20) -> None:
    """Let glibc reuse a big picture's freed memory for the next one, up to `limit`.

    By default every buffer over 32 MB is a fresh mmap, and faulting its pages in again
    costs more than a tenth of decoding a 16-megapixel PNG (benchmarks: 64 ms mean
    prepare time becomes 56 ms). Past `limit`, freed memory still goes back to the
    system, so one huge picture does not pin a worker's size. Elsewhere a no-op.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_max = -1, -4
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, limit)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _serve(conn: Connection, max_pixels: int) -> None:
    # A service manager signals the whole process group (Ctrl-C does too): the parent
    # decides how to stop, and kills its decoders itself. They started with these
    # signals blocked (see `_Worker`), so none slipped in before this line.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _keep_freed_memory()
    # `max_pixels` is the one limit, checked on what is really decoded (JPEGs decode
    # DCT-scaled); Pillow's own guard would refuse pictures it allows (89 MP < 100 MP).
    Image.MAX_IMAGE_PIXELS = None
    faults = [m.encode() for m in os.environ.get(FAULT_ENV, "").split(",") if m]
    while True:
        try:
            targets = conn.recv()
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent went away
        if faults and faults[0] in data:
            os.kill(os.getpid(), signal.SIGSEGV)
        if len(faults) > 1 and faults[1] in data:
            while True:
                pass
        try:
            conn.send(("ok", prepare_targets(data, targets, max_pixels)))
        except DecodeError as exc:
            conn.send(("error", (str(exc), exc.kind.value, exc.needs)))
        except MemoryError:
            conn.send(("error", ("out of memory while decoding", Kind.MEMORY.value, None)))


class _Worker:
    def __init__(self, context: Any, max_pixels: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, max_pixels), daemon=True, name="dtindex-decoder"
        )
        # The blocked set is inherited through spawn. The resource tracker must run
        # first: starting it unblocks SIGINT and SIGTERM in the calling thread.
        resource_tracker.ensure_running()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child.close()

    def stop(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.join(5)


class DecoderPool:
    """Worker processes handed out to the pipeline's threads, one picture at a time."""

    def __init__(self, size: int, max_pixels: int, timeout: float) -> None:
        self.timeout, self.max_pixels = timeout, max_pixels
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        for _ in range(size):
            self._idle.put(None)  # started lazily

    def prepare(self, data: bytes, targets: Sequence[Target]) -> Result:
        worker = self._idle.get() or self._start()
        try:
            worker.conn.send(list(targets))
            worker.conn.send_bytes(data)  # no pickled copy of a big file
            if not worker.conn.poll(self.timeout):
                self._replace(worker)
                worker = self._start()
                raise DecodeError(
                    f"decoding took over {self.timeout:g} s; decoder stopped", Kind.TIMEOUT
                )
            status, payload = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            worker.process.join(5)
            code = worker.process.exitcode
            self._replace(worker)
            worker = self._start()
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
            raise DecodeError(f"decoder crashed ({how}); picture skipped", Kind.CRASH) from None
        finally:
            self._idle.put(worker)
        if status == "error":
            message, kind, needs = payload
            raise DecodeError(str(message), Kind(kind), needs)
        return payload  # type: ignore[no-any-return]

    def _start(self) -> _Worker:
        worker = _Worker(self._context, self.max_pixels)
        self._workers.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        worker.stop()
        self._workers.remove(worker)

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers.clear()

    def __enter__(self) -> DecoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
