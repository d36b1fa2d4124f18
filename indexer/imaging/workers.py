"""Decoder processes: a decoder that crashes or hangs cannot take a scan down.

The main process sends small requests (a path to look at, or a path to decode into
batch slots) and reads small replies; file bytes and pixels stay in the workers. Each
worker holds up to `depth` requests (the pipeline sets it to a batch's share), so it
keeps working while the main process runs a batch or writes to the index. The pool is
driven from one thread: `submit` queues, `collect` waits for replies. A worker that dies
(a segfault in a codec) or overruns the per-picture time limit is replaced; only the
picture it was on fails, and the requests queued behind it go to another worker.
"""

from __future__ import annotations

import ctypes
import functools
import math
import multiprocessing
import os
import pickle
import select
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image

from indexer.errors import DecodeError, Failure, Kind
from indexer.imaging.slots import SlotAddress, SlotRing, SlotWriter
from indexer.imaging.spawning import STOP_SIGNALS, start_held
from indexer.imaging.tasks import Looked, Skipped, Target, decode_into, look, read_again, unchanged
from indexer.imaging.tasks import prepare_targets as fitted

FAULT_ENV = "DTINDEX_TEST_FAULTS"  # tests only: "crash-marker,hang-marker" bytes in a file

# A request: ("look", path) or ("decode", path, expected xxh3-128 or None, targets), or
# ("fit", path, expected, targets) for a Ray worker, answered with the fitted uint8 pictures
# (("fit", path, expected, targets, bytes) when the driver shipped the file's bytes).
Request = tuple[Any, ...]
Reply = Looked | Skipped | tuple[int, int] | Failure | list[Any]


def look_request(path: bytes) -> Request:
    return ("look", path)


@functools.lru_cache(maxsize=64)
def packed_target(target: Target) -> bytes:
    return pickle.dumps(target)


def decode_request(
    path: bytes, expect: str | None, targets: Sequence[tuple[Target, SlotAddress]]
) -> Request:
    """Targets travel pickled once (a model's settings are a dozen fields) as bytes."""
    return ("decode", path, expect, [(packed_target(t), address) for t, address in targets])


class _Unpacked(dict[bytes, Target]):
    def __missing__(self, packed: bytes) -> Target:
        target: Target = pickle.loads(packed)
        self[packed] = target
        return target


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


def _handle(
    request: Request, writer: SlotWriter, targets: _Unpacked, max_pixels: int, faults: list[bytes]
) -> Any:
    if request[0] == "look":
        return look(request[1])
    _, path, expect, packed, *sent = request
    data = unchanged(sent[0], expect) if sent else read_again(path, expect)
    if isinstance(data, Skipped):
        return data
    if faults and faults[0] in data:
        os.kill(os.getpid(), signal.SIGSEGV)
    if len(faults) > 1 and faults[1] in data:
        while True:
            pass
    if request[0] == "fit":
        return fitted(data, [targets[t] for t in packed], max_pixels)[0]
    return decode_into(data, [(targets[t], a) for t, a in packed], writer, max_pixels)


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
    writer, targets = SlotWriter(), _Unpacked()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        try:
            reply: tuple[str, Any] = ("ok", _handle(request, writer, targets, max_pixels, faults))
        except DecodeError as exc:
            reply = ("error", (str(exc), exc.kind.value, exc.needs))
        except MemoryError:
            reply = ("error", ("out of memory while decoding", Kind.MEMORY.value, None))
        except Exception as exc:  # a codec's own error type, a ring already gone: this
            # picture fails (retried by the next scan); the decoder lives on
            reply = ("error", (f"decoder failed: {exc!r}", Kind.CRASH.value, None))
        try:
            conn.send(reply)
        except OSError:
            return  # the parent stopped listening (it is stopping us): not worth a traceback


@dataclass
class _Worker:
    process: Any
    conn: Connection
    sent: deque[tuple[object, Request]] = field(default_factory=deque)
    since: float = 0.0  # when the request at the head of `sent` began, at the latest

    @classmethod
    def start(cls, context: Any, max_pixels: int) -> _Worker:
        conn, child = context.Pipe()
        process = context.Process(
            target=_serve, args=(child, max_pixels), daemon=True, name="dtindex-decoder"
        )
        start_held(process)  # signals held: see imaging.spawning
        child.close()
        return cls(process, conn)

    def stop(self) -> None:
        self.process.kill()  # before closing: a reply sent into a closed pipe is no error
        self.conn.close()
        self.process.join(5)


def _crashed(worker: _Worker) -> Failure:
    """Why a dead worker's request failed. Seen as a closed pipe on receive, or as a
    broken pipe on the next send (it replied, then died on the request behind)."""
    worker.process.join(5)
    code = worker.process.exitcode
    how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
    return Failure(f"decoder crashed ({how}); picture skipped", Kind.CRASH)


class DecoderPool:
    """Worker processes fed from one thread; replies come back with their tickets."""

    def __init__(self, size: int, max_pixels: int, timeout: float, depth: int = 2) -> None:
        self.size, self.max_pixels, self.timeout, self.depth = size, max_pixels, timeout, depth
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._workers: list[_Worker] = []
        self._urgent: deque[tuple[object, Request]] = deque()
        self._queued: deque[tuple[object, Request]] = deque()
        self._rings: dict[tuple[object, ...], SlotRing] = {}
        self._poller = select.poll()  # kept, not rebuilt per wait: a wait per picture or more
        self._by_fd: dict[int, _Worker] = {}

    def ring(self, key: object, shape: tuple[int, ...], batch: int, depth: int) -> SlotRing:
        """The shared-memory ring for `key` (a model's place in a run), kept between runs."""
        full_key = (key, shape, batch, depth)
        if full_key not in self._rings:
            self._rings[full_key] = SlotRing(shape, batch, depth)
        return self._rings[full_key]

    def submit(self, request: Request, ticket: object, urgent: bool = False) -> None:
        (self._urgent if urgent else self._queued).append((ticket, request))

    @property
    def outstanding(self) -> int:
        return len(self._urgent) + len(self._queued) + sum(len(w.sent) for w in self._workers)

    def collect(self, timeout: float | None = None) -> list[tuple[object, Reply]]:
        """Replies that are ready, waiting up to `timeout` (None: until one comes)."""
        replies: list[tuple[object, Reply]] = []
        self._dispatch(replies)
        busy = [w for w in self._workers if w.sent]
        if not busy:
            return replies
        now = time.monotonic()
        limit = min(w.since + self.timeout for w in busy) - now
        wait = max(0.0, limit if timeout is None else min(timeout, limit))
        ready = {fd for fd, _ in self._poller.poll(0 if replies else math.ceil(wait * 1000))}
        for fd in ready:
            idle = self._by_fd.get(fd)
            if idle is not None and not idle.sent:  # died while idle: nothing lost
                self._lost(idle, replies, Failure("decoder died", Kind.CRASH))
        now = time.monotonic()
        for worker in busy:
            if worker.conn.fileno() in ready:
                self._receive(worker, now, replies)
            elif now >= worker.since + self.timeout:
                self._lost(worker, replies, Failure(
                    f"decoding took over {self.timeout:g} s; decoder stopped", Kind.TIMEOUT
                ))  # fmt: skip
        self._dispatch(replies)
        return replies

    def _receive(self, worker: _Worker, now: float, replies: list[tuple[object, Reply]]) -> None:
        """One reply (the poll said one is there; a second one is taken on the next)."""
        try:
            status, payload = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker, replies, _crashed(worker))
            return
        ticket, _ = worker.sent.popleft()
        worker.since = now
        if status == "error":
            message, kind, needs = payload
            payload = Failure(str(message), Kind(kind), needs)
        replies.append((ticket, payload))

    def _lost(self, worker: _Worker, replies: list[tuple[object, Reply]], why: Failure) -> None:
        """The request `worker` was on fails; the ones queued behind it go elsewhere."""
        self._remove(worker)
        if worker.sent:
            ticket, _ = worker.sent.popleft()
            replies.append((ticket, why))
        self._urgent.extendleft(reversed(worker.sent))

    def _dispatch(self, replies: list[tuple[object, Reply]]) -> None:
        while self._urgent or self._queued:
            worker = min(self._workers, key=lambda w: len(w.sent), default=None)
            if (worker is None or worker.sent) and len(self._workers) < self.size:
                worker = self._start()
            if worker is None or len(worker.sent) >= self.depth:
                return
            ticket, request = (self._urgent or self._queued).popleft()
            if not worker.sent:
                worker.since = time.monotonic()
            worker.sent.append((ticket, request))
            try:  # a plain pickle, 3 us less a request: none holds handles to reduce
                worker.conn.send_bytes(pickle.dumps(request, pickle.HIGHEST_PROTOCOL))
            except (OSError, ValueError):  # it died: its first unanswered request did it
                worker.sent.pop()
                self._urgent.appendleft((ticket, request))
                # Replies it sent before dying are still in the pipe: take them first.
                while worker in self._workers and worker.conn.poll():
                    self._receive(worker, time.monotonic(), replies)
                if worker in self._workers:
                    self._lost(worker, replies, _crashed(worker))

    def _start(self) -> _Worker:
        worker = _Worker.start(self._context, self.max_pixels)
        self._workers.append(worker)
        self._by_fd[worker.conn.fileno()] = worker
        self._poller.register(worker.conn.fileno(), select.POLLIN)
        return worker

    def _remove(self, worker: _Worker) -> None:
        fd = worker.conn.fileno()
        self._poller.unregister(fd)
        del self._by_fd[fd]
        self._workers.remove(worker)
        worker.stop()

    def forget(self) -> None:
        """Drop queued requests and stop the workers still busy (an early exit)."""
        self._urgent.clear()
        self._queued.clear()
        for worker in [w for w in self._workers if w.sent]:
            self._remove(worker)

    def close(self) -> None:
        for worker in list(self._workers):
            self._remove(worker)
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()

    def __enter__(self) -> DecoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
