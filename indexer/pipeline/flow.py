"""The tagging pipeline shared by `tag`, `scan` and `watch`, driven from one thread.

Jobs go through up to three steps. Decoder processes *look* at a file (read it, check it
held still, hash it); the main thread *decides*, for a group of looked jobs at once, what
each needs (a scan records files and contents and claims the work in a few statements);
decoder processes *decode* each wanted picture straight into the slots its models'
batches hold in shared memory. Full batches run in ONNX Runtime, in job order per model.
The main thread handles small records only: no pixels, no file bytes, no hashing; but
where the GPU decodes (`device`, one model), it reads the files it hands to the GPU.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.errors import Failure
from indexer.imaging.messages import Decoded, DecodeInto, Look, Reply, Skipped
from indexer.imaging.workers import DecoderPool
from indexer.models.runtime import Tagger
from indexer.pipeline.device import Device, DeviceLane, Refused
from indexer.pipeline.inference import Inference, Timings
from indexer.pipeline.lanes import Batch, Lane

J = TypeVar("J")
STOP_CHECK_S = 0.2  # a signal cannot wake a wait on pipes: look at the stop flag this often
# Looked jobs are decided in groups of this many (a few statements per group), or sooner
# when the decoders would otherwise run out of pictures to decode.
GROUP = 64
AHEAD = 2  # batches' worth of jobs looked at ahead of the one being filled


@dataclass(frozen=True)
class Budget:
    """Decoder processes, and how many batches a ring holds.

    One decoder process per core, and ONNX Runtime's intra-op pool on every core with
    spinning off (see `models.load`): decoders block once the window ahead is full, and
    idle ONNX Runtime threads sleep instead of busy-waiting, so whichever stage has work
    gets the cores (benchmarks/: faster than one decoder, spinning on or off).
    """

    decoders: int

    @classmethod
    def for_machine(cls, decoders: int = 0) -> Budget:
        return cls(decoders=decoders or os.cpu_count() or 1)

    def depth(self, threaded: bool) -> int:
        """Batches per ring: one running, one filling, one decoding ahead; with a GPU
        thread one more, waiting to run."""
        return 4 if threaded else 3


@dataclass(frozen=True)
class Order(Generic[J]):
    """A decided job: decode `path` (still `expect`, when given) for these models."""

    job: J
    path: bytes
    expect: str | None
    wanted: tuple[int, ...]


class Steps(Protocol[J]):
    """What a caller supplies. Every method runs in the calling thread, in job order."""

    def look(self, job: J) -> bytes | None:
        """The path to look at (read and hash) first, or None to go straight to `decide`."""

    def decide(self, group: list[tuple[J, Reply | None]]) -> list[Order[J]]:
        """What each job of a group needs; jobs left out need nothing more."""

    def unprepared(self, order: Order[J], why: Failure | Skipped) -> None:
        """A decided picture could not be decoded, or changed or went away meanwhile."""

    def scores(
        self,
        index: int,
        jobs: list[J],
        matrix: NDArray[np.float32],
        embeddings: NDArray[np.float32] | None,
    ) -> None:
        """Model `index` scored these jobs, one row each (embeddings: where it stores them)."""

    def failed(self, index: int, job: J, failure: Failure) -> None:
        """Model `index` failed on this picture."""


@dataclass(eq=False)
class _Looking(Generic[J]):
    job: J
    reply: Reply | None = None
    answered: bool = False


@dataclass(eq=False)
class _Decoding(Generic[J]):
    order: Order[J]
    places: list[tuple[Batch[J], int]]


def run_pipeline(
    taggers: Sequence[Tagger],
    jobs: Iterable[J],
    steps: Steps[J],
    pool: DecoderPool,
    batch: int,
    budget: Budget,
    stop: threading.Event | None = None,
    timings: Timings | None = None,
    idle: Callable[[], None] | None = None,
    device: Device | None = None,
) -> None:
    """Run `jobs` through the steps. Once `stop` is set nothing new starts; the batch
    running finishes and its results are handed over (a signal costs at most the batches
    being filled, which a later run does again). `idle` runs before every wait that may
    block, so a caller can commit and not hold the database's lock. With `device` (a run
    of one model, `device.device_for`), JPEGs go to the GPU lane first."""
    flow = _Flow(taggers, jobs, steps, pool, batch, budget, stop, timings or Timings(), idle)
    if device is not None:
        flow.device = DeviceLane(device, flow.lanes[0], pool.max_pixels)
    try:
        flow.run()
    finally:
        if pool.outstanding:
            pool.forget()  # workers still busy would write into slots reused later
        for lane in flow.lanes:
            lane.drop_waiting()
        flow.inference.close()


class _Flow(Generic[J]):
    def __init__(
        self,
        taggers: Sequence[Tagger],
        jobs: Iterable[J],
        steps: Steps[J],
        pool: DecoderPool,
        batch: int,
        budget: Budget,
        stop: threading.Event | None,
        timings: Timings,
        idle: Callable[[], None] | None,
    ) -> None:
        self.steps, self.pool, self.stop, self.timings = steps, pool, stop, timings
        self.idle = idle or (lambda: None)
        threaded = any(t.bound for t in taggers)
        depth = budget.depth(threaded)
        self.lanes = [
            Lane[J](i, t, pool.ring(i, t.picture_shape, batch, depth))
            for i, t in enumerate(taggers)
        ]
        self.inference = Inference[J](steps.scores, steps.failed, threaded, timings)
        self.device: DeviceLane[J, Order[J]] | None = None
        self.source = iter(jobs)
        self.exhausted = False
        self.looking: deque[_Looking[J]] = deque()
        # How many entries at the head of `looking` are answered, kept as answers come:
        # counting them at every turn of the loop cost a scan microseconds per reply.
        self.answered_head = 0
        self.orders: deque[Order[J]] = deque()
        self.window = max(budget.decoders * 8, batch * AHEAD, 2 * GROUP)
        self.decoders = budget.decoders
        pool.hold_batches_of(batch)
        self.decoding = 0  # decode requests not answered yet

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def run(self) -> None:
        while not self.stopping():
            self.feed()
            self.decide()
            self.assign()
            self.inference.deliver_finished()
            ran = self.run_ready()
            if self.done():
                break
            if not ran:
                self.wait()
        self.inference.drain()

    def feed(self) -> None:
        while not self.exhausted and len(self.looking) < self.window:
            job = next(self.source, None)
            if job is None:
                self.exhausted = True
                return
            entry = _Looking(job)
            path = self.steps.look(job)
            if path is None:
                entry.answered = True
            else:
                self.pool.submit(Look(path), entry)
            self.looking.append(entry)
            if entry.answered and self.answered_head == len(self.looking) - 1:
                self.answered_head += 1

    def decide(self) -> None:
        """Decide the answered jobs at the head, once there are enough to make a group
        worth its statements, or the decoders have too little to decode meanwhile."""
        answered = min(self.answered_head, GROUP)
        held = len(self.device.held) if self.device is not None else 0  # the GPU's to come
        hungry = self.decoding + held < self.decoders and len(self.orders) < self.decoders
        if not answered or not (answered == GROUP or hungry or answered == len(self.looking)):
            return
        group: list[tuple[J, Reply | None]] = []
        for _ in range(answered):
            entry = self.looking.popleft()
            group.append((entry.job, entry.reply))
        self.answered_head -= answered
        self.orders.extend(order for order in self.steps.decide(group) if order.wanted)

    def assign(self) -> None:
        while self.orders and all(self.lanes[i].has_room() for i in self.orders[0].wanted):
            order = self.orders.popleft()
            places, targets = [], []
            for i in order.wanted:
                batch, position, address = self.lanes[i].place(order.job)
                places.append((batch, position))
                targets.append((self.lanes[i].target, address))
            if self.device is None:
                self.to_decoders((order, places, targets))
            else:
                self.device.hold(order, batch, position, address)
        if self.device is not None:  # the GPU decodes full batches; the CPU what it refused
            for refused in self.device.flush(self.last()):
                self.to_decoders(refused)

    def to_decoders(self, decode: Refused[Order[J], J]) -> None:
        order, places, targets = decode
        request = DecodeInto.of(order.path, order.expect, targets)
        self.pool.submit(request, _Decoding(order, places), urgent=True)
        self.decoding += 1

    def last(self) -> bool:
        """Whether every order there will be has been assigned."""
        return self.exhausted and not self.looking and not self.orders

    def run_ready(self) -> bool:
        flush = self.last()
        ran = False
        for lane in self.lanes:
            while (batch := lane.ready(flush)) is not None:
                ran = True
                if batch.slots.count(None) == len(batch.slots):
                    lane.released()
                    continue
                self.idle()
                rows = lane.view(batch) if self.device is None else self.device.batch_rows(batch)
                self.inference.submit(lane.index, lane.tagger, batch.slots, rows, lane.released)
        return ran

    def done(self) -> bool:
        return self.exhausted and not (
            self.looking or self.orders or any(lane.waiting for lane in self.lanes)
        )

    def wait(self) -> None:
        """Commit (through `idle`), then take the replies, blocking until one comes. The
        loop waits only once it has nothing else to do, and then nearly always blocks
        (1,622 of 1,663 waits in a scan of 1,500 pictures): a first look for replies
        already there cost a poll and a pass over the workers a wait, for nothing."""
        if not self.pool.outstanding:
            if self.inference.busy:
                self.inference.deliver_one()
            return
        self.idle()
        started = time.perf_counter()
        replies = self.pool.collect(STOP_CHECK_S if self.stop is not None else None)
        self.timings.waiting_s += time.perf_counter() - started
        for ticket, reply in replies:
            self.answer(ticket, reply)

    def answer(self, ticket: object, reply: Reply) -> None:
        if isinstance(ticket, _Looking):
            ticket.reply, ticket.answered = reply, True
            looking, head = self.looking, self.answered_head
            while head < len(looking) and looking[head].answered:
                head += 1
            self.answered_head = head
            return
        assert isinstance(ticket, _Decoding)
        self.decoding -= 1
        ok = isinstance(reply, Decoded)
        for batch, position in ticket.places:
            batch.pending -= 1
            if not ok:
                batch.slots[position] = None
        if isinstance(reply, Failure | Skipped):
            self.steps.unprepared(ticket.order, reply)
