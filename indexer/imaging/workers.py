"""Decoder processes: a decoder that crashes or hangs cannot take a scan down.

The main process sends small requests (a path to look at, or a path to decode into
batch slots) and reads small replies; file bytes and pixels stay in the workers. Each
worker holds up to `depth` requests (a batch's share: `hold_batches_of`), so it
keeps working while the main process runs a batch or writes to the index. The pool is
driven from one thread: `submit` queues, `collect` waits for replies. A worker that dies
(a segfault in a codec) or overruns the per-picture time limit is replaced; only the
picture it was on fails, and the requests queued behind it go to another worker.
"""

from __future__ import annotations

import math
import select
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TypeVar, cast

from indexer.errors import Failure, Kind
from indexer.imaging.decoder import serve
from indexer.imaging.frames import Inbox
from indexer.imaging.messages import (
    Look,
    LookedMany,
    LookMany,
    Ready,
    Reply,
    Request,
    decode,
    encode,
)
from indexer.imaging.slots import SlotRing
from indexer.imaging.spawning import Worker, start_worker

# Looks queued together go out as one request of up to this many paths: a scan's look
# costs the main process a wake-up and a reply's reading, as a decode does, and looks
# are mostly quick (benchmarks/pipeline.py, issue 13).
LOOK_GROUP = 8
# How long a decoder may take to start (to say `Ready`) before its first request fails
# as a crash (a picture's own time limit runs only once it has started); and how many
# waiting requests are worth starting one more while every decoder has work.
START_LIMIT, START_SHARE = 120.0, 4
T = TypeVar("T")


@dataclass(eq=False)
class _Looks:
    """Looks sent as one request. Should its decoder crash or time out, which path was at
    fault is unknown: each is sent again alone, so only that one fails."""

    tickets: list[object]
    paths: list[bytes]


@dataclass
class _Worker:
    process: Worker
    conn: Connection
    fd: int  # the pipe's, kept: asked at every wait
    sent: deque[tuple[object, Request]] = field(default_factory=deque)
    since: float = 0.0  # when the request at the head of `sent` began, at the latest
    ready: bool = False  # it said `Ready`: until then, `since` is when it was started
    inbox: Inbox = field(default_factory=Inbox)  # replies are read in bulk (see frames)

    @classmethod
    def start(cls, max_pixels: int) -> _Worker:
        process, conn = start_worker(serve, max_pixels)  # signals held: see imaging.spawning
        return cls(process, conn, conn.fileno(), since=time.monotonic())

    def stop(self) -> None:
        self.process.kill()  # before closing: a reply sent into a closed pipe is no error
        self.conn.close()
        self.process.join(5)


def _crashed(worker: _Worker) -> Failure:
    """Why a dead worker's request failed. Seen as a closed pipe on receive, or as a
    broken pipe on the next send (it replied, then died on the request behind)."""
    return Failure(f"decoder crashed ({worker.process.ended()}); picture skipped", Kind.CRASH)


def _shut(workers: list[_Worker], rings: dict[tuple[object, ...], SlotRing]) -> None:
    for worker in workers:
        worker.stop()
    workers.clear()
    for ring in rings.values():
        ring.close()
    rings.clear()


class DecoderPool:
    """Worker processes fed from one thread; replies come back with their tickets."""

    def __init__(self, size: int, max_pixels: int, timeout: float, depth: int = 2) -> None:
        self.size, self.max_pixels, self.timeout, self.depth = size, max_pixels, timeout, depth
        self._workers: list[_Worker] = []
        self._urgent: deque[tuple[object, Request]] = deque()
        self._queued: deque[tuple[object, Request]] = deque()
        self._rings: dict[tuple[object, ...], SlotRing] = {}
        self._poller = select.poll()  # kept, not rebuilt per wait: a wait per picture or more
        self._by_fd: dict[int, _Worker] = {}
        # One never closed (a model kept in a variable to the end) is closed when dropped,
        # or at the interpreter's exit: its rings unlinked, its workers stopped.
        weakref.finalize(self, _shut, self._workers, self._rings)

    def hold_batches_of(self, batch: int) -> None:
        """Let each worker hold its share of a batch of `batch` pictures, and one more.
        On the CPU a batch runs inline and nothing is sent meanwhile: every decoder must
        already hold its share of the next batch, or the model waits for it."""
        self.depth = max(2, min(64, -(-batch // self.size) + 1))

    def ring(self, key: object, shape: tuple[int, ...], batch: int, depth: int) -> SlotRing:
        """The shared-memory ring for `key` (a model's place in a run), kept between runs."""
        full_key = (key, shape, batch, depth)
        if full_key not in self._rings:
            self._rings[full_key] = SlotRing(shape, batch, depth)
        return self._rings[full_key]

    def submit(self, request: Request, ticket: object, urgent: bool = False) -> None:
        (self._urgent if urgent else self._queued).append((ticket, request))

    def answer_all(self, requests: Iterable[tuple[Request, T]]) -> list[tuple[T, Reply]]:
        """Each request's reply with its ticket, as they come: for a caller with a set of
        pictures to look at or decode and nothing to do meanwhile. (The pipeline, which
        runs batches while decoders work, drives `submit` and `collect` itself.)"""
        for request, ticket in requests:
            self.submit(request, ticket)
        replies: list[tuple[T, Reply]] = []
        try:
            while self.outstanding:
                replies.extend(cast(list[tuple[T, Reply]], self.collect()))
        finally:
            if self.outstanding:
                self.forget()
        return replies

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
        wait_ms = 0
        if not replies and timeout != 0:
            limit = min(self._deadline(w) for w in busy) - time.monotonic()
            wait = max(0.0, limit if timeout is None else min(timeout, limit))
            wait_ms = math.ceil(wait * 1000)
        ready = {fd for fd, _ in self._poller.poll(wait_ms)}
        now = time.monotonic()
        for fd in ready:
            idle = self._by_fd.get(fd)
            if idle is not None and not idle.sent:  # `Ready`, or it died idle: nothing lost
                self._receive(idle, now, replies)
        for worker in busy:
            if worker.fd in ready:
                self._receive(worker, now, replies)
            elif now >= self._deadline(worker):
                self._lost(worker, replies, self._overran(worker))
        self._dispatch(replies)
        return replies

    def _deadline(self, worker: _Worker) -> float:
        """When the request at the head of a busy worker's queue has taken too long: the
        time limit from its start, or the start limit for a worker still starting."""
        return worker.since + (self.timeout if worker.ready else max(self.timeout, START_LIMIT))

    def _overran(self, worker: _Worker) -> Failure:
        if worker.ready:
            return Failure(f"decoding took over {self.timeout:g} s; decoder stopped", Kind.TIMEOUT)
        return Failure(f"decoder did not start in {START_LIMIT:g} s; stopped", Kind.CRASH)

    def _receive(self, worker: _Worker, now: float, replies: list[tuple[object, Reply]]) -> None:
        """Every reply that has come from `worker` (the poll said its pipe is readable)."""
        try:
            frames = worker.inbox.read(worker.fd)
        except (EOFError, OSError):
            self._lost(worker, replies, _crashed(worker))
            return
        for frame in frames:
            reply = decode(frame)
            if isinstance(reply, Ready):
                worker.ready = True
                continue
            ticket, _ = worker.sent.popleft()
            if isinstance(ticket, _Looks):
                assert isinstance(reply, LookedMany)
                replies.extend(zip(ticket.tickets, reply.replies, strict=True))
            else:
                replies.append((ticket, reply))  # type: ignore[arg-type]
        if frames:
            worker.since = now

    def _lost(self, worker: _Worker, replies: list[tuple[object, Reply]], why: Failure) -> None:
        """The request `worker` was on fails; the ones queued behind it go elsewhere."""
        self._remove(worker)
        again = list(worker.sent)
        if again:
            ticket, _ = again.pop(0)
            if isinstance(ticket, _Looks):
                again[:0] = [
                    (t, Look(p)) for t, p in zip(ticket.tickets, ticket.paths, strict=True)
                ]
            else:
                replies.append((ticket, why))
        self._urgent.extendleft(reversed(again))

    def _next(self) -> tuple[object, Request]:
        """The next request to send: an urgent one, else the queued looks' share of one
        worker (up to `LOOK_GROUP`) as one, else the next queued request."""
        if self._urgent:
            return self._urgent.popleft()
        queued = self._queued
        ticket, request = queued.popleft()
        if not isinstance(request, Look) or not queued or not isinstance(queued[0][1], Look):
            return ticket, request
        share = min(LOOK_GROUP, -(-(len(queued) + 1) // self.size))
        tickets, paths = [ticket], [request.path]
        while len(paths) < share and queued and isinstance(queued[0][1], Look):
            ticket, look = queued.popleft()
            assert isinstance(look, Look)
            tickets.append(ticket)
            paths.append(look.path)
        if len(paths) == 1:
            return ticket, request
        return _Looks(tickets, paths), LookMany(tuple(paths))

    def _least_busy(self) -> _Worker | None:
        """The worker with the fewest requests, if it can take one more; a new one where
        there is room and every worker is full, or busy with `START_SHARE` waiting (a
        start costs what a few dozen pictures' decoding does: a few new files start one)."""
        chosen, fewest = None, self.depth
        for worker in self._workers:
            if len(worker.sent) < fewest:
                chosen, fewest = worker, len(worker.sent)
        waiting = len(self._urgent) + len(self._queued)
        worth = chosen is None or (fewest > 0 and waiting >= START_SHARE)
        if worth and len(self._workers) < self.size:
            chosen = self._start()
        return chosen

    def _dispatch(self, replies: list[tuple[object, Reply]]) -> None:
        while self._urgent or self._queued:
            worker = self._least_busy()
            if worker is None:
                return
            ticket, request = self._next()
            if not worker.sent:
                worker.since = time.monotonic()
            worker.sent.append((ticket, request))
            try:  # as bytes: Connection.send's pickler would look for handles to reduce
                worker.conn.send_bytes(encode(request))
            except (OSError, ValueError):  # it died: its first unanswered request did it
                worker.sent.pop()
                self._urgent.appendleft((ticket, request))
                # Replies it sent before dying are still in the pipe: take them first.
                while worker in self._workers and worker.conn.poll():
                    self._receive(worker, time.monotonic(), replies)
                if worker in self._workers:
                    self._lost(worker, replies, _crashed(worker))

    def _start(self) -> _Worker:
        worker = _Worker.start(self.max_pixels)
        self._workers.append(worker)
        self._by_fd[worker.fd] = worker
        self._poller.register(worker.fd, select.POLLIN)
        return worker

    def _remove(self, worker: _Worker) -> None:
        self._poller.unregister(worker.fd)
        del self._by_fd[worker.fd]
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
        _shut(self._workers, self._rings)

    def __enter__(self) -> DecoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
