"""The tagging pipeline shared by `tag`, `scan` and `watch`.

Worker threads read, hash and hand pictures to decoder processes (Pillow, hashlib and
xxhash release the GIL) in a bounded window ahead of the model, while the calling
thread fills each model's float32 batch array in place and runs ONNX Runtime (which
releases it too), or with a GPU hands the batch to an inference thread. Callbacks run
in the calling thread, in job order, so they may use the database.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.errors import DecodeError, Failure, Kind, ModelError
from indexer.imaging.prepare import fill
from indexer.imaging.workers import DecoderPool, Target
from indexer.models.runtime import Tagger

log = logging.getLogger("dtindex")
J = TypeVar("J")


NOT_A_NUMBER = Failure("model output is not a number", Kind.OUTPUT)
# A model failing this many single pictures in a row for no fault of theirs stops the
# run: out of memory on the GPU for every picture must not mark the gallery failed.
STOP_AFTER_FAILURES = 3


@dataclass
class Prepared(Generic[J]):
    """A job after the worker: its pictures per model index, or why it has none."""

    job: J
    pictures: dict[int, NDArray[np.uint8]] = field(default_factory=dict)
    error: str | None = None
    info: dict[str, object] = field(default_factory=dict)
    kind: Kind = Kind.PICTURE
    needs: int | None = None

    def failure(self) -> Failure:
        return Failure(self.error or "no result", self.kind, self.needs)


@dataclass
class Timings:
    """Where a run's time went: is the model kept busy, or waiting for decoded pictures?"""

    model_s: float = 0.0  # batches running in ONNX Runtime
    waiting_s: float = 0.0  # the loop waiting for the next prepared picture

    def summary(self, wall_s: float) -> str:
        share = 100 * self.model_s / wall_s if wall_s > 0 else 0.0
        return (
            f"the model ran {self.model_s:.1f} s of {wall_s:.1f} s ({share:.0f}%); "
            f"{self.waiting_s:.1f} s waiting for decoded pictures"
        )


@dataclass(frozen=True)
class Budget:
    """Decoder processes and ONNX Runtime threads, chosen together so they do not fight.

    One decoder process per core, and ONNX Runtime's intra-op pool on every core with
    spinning off (see `models.load`): decoders block once the window ahead is full, and
    idle ONNX Runtime threads sleep instead of busy-waiting, so whichever stage has work
    gets the cores. Measured on 2 cores (benchmarks/): 1.43x the naive loop, against
    1.28x with one decoder and spinning on, and 1.31x with one decoder and spinning off.
    """

    decoders: int
    ahead: int

    @classmethod
    def for_machine(cls, decoders: int = 0) -> Budget:
        return cls(decoders=decoders or os.cpu_count() or 1, ahead=2)


def prepare_for(
    pool: DecoderPool, data: bytes, taggers: Sequence[Tagger], wanted: Iterable[int]
) -> tuple[dict[int, NDArray[np.uint8]], tuple[int, int] | None]:
    """Decode once in a worker process and fit for every wanted model; also (width, height)."""
    wanted = list(wanted)
    if not wanted:
        return {}, None
    targets = [Target(taggers[i].spec, taggers[i].height, taggers[i].width) for i in wanted]
    pictures, full = pool.prepare(data, targets)
    return dict(zip(wanted, pictures, strict=True)), full


class Batcher(Generic[J]):
    """One model's batch in the making: a float32 array filled slot by slot."""

    def __init__(self, tagger: Tagger, size: int) -> None:
        self.tagger, self.size = tagger, size
        self.jobs: list[J] = []
        self.array = tagger.new_batch(size)

    def add(self, job: J, picture: NDArray[np.uint8]) -> bool:
        fill(self.array[len(self.jobs)], picture, self.tagger.spec)
        self.jobs.append(job)
        return len(self.jobs) == self.size

    def take(self) -> tuple[list[J], NDArray[np.float32]]:
        jobs, array = self.jobs, self.array[: len(self.jobs)]
        self.jobs, self.array = [], self.tagger.new_batch(self.size)
        return jobs, array


ScoresCallback = Callable[[int, list[J], NDArray[np.float32]], None]
FailCallback = Callable[[int, J, Failure], None]
# What one batch came to: (jobs, scores, None), or ([job], None, why) for a picture the
# model failed on.
Outcome = tuple[list[J], NDArray[np.float32] | None, Failure | None]


def _finite(jobs: list[J], scores: NDArray[np.float32]) -> list[Outcome[J]]:
    """Pictures with a NaN or infinite score fail; a result is never stored without them."""
    finite = np.asarray(np.isfinite(scores).all(axis=1))
    good = [bool(ok) for ok in finite]
    if all(good):
        return [(jobs, scores, None)]
    kept = [job for job, ok in zip(jobs, good, strict=True) if ok]
    outcomes: list[Outcome[J]] = [(kept, scores[np.array(good)], None)] if kept else []
    bad = [job for job, ok in zip(jobs, good, strict=True) if not ok]
    return outcomes + [([job], None, NOT_A_NUMBER) for job in bad]


def infer(tagger: Tagger, jobs: list[J], array: NDArray[np.float32]) -> list[Outcome[J]]:
    """Run a batch; a run-time failure retries it in halves, down to single pictures."""
    try:
        return _finite(jobs, tagger.run(array))
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime's errors are untyped (out of memory, provider)
        if len(jobs) == 1:
            return [(jobs, None, Failure(f"model {tagger.name} failed: {exc}", Kind.MODEL))]
        log.warning("%s: batch of %d failed (%s); retrying smaller", tagger.name, len(jobs), exc)
        half = len(jobs) // 2
        return infer(tagger, jobs[:half], array[:half]) + infer(tagger, jobs[half:], array[half:])


def _timed(
    tagger: Tagger, jobs: list[J], array: NDArray[np.float32]
) -> tuple[list[Outcome[J]], float]:
    start = time.perf_counter()
    outcomes = infer(tagger, jobs, array)
    return outcomes, time.perf_counter() - start


class Inference(Generic[J]):
    """Runs batches and hands their results to the callbacks in the calling thread.

    With a GPU provider, batches run in a thread of their own, so the GPU never waits
    while the caller records the last batch in the database or fills the next one (one
    batch runs and at most one more waits). On the CPU, ONNX Runtime's threads already
    use every core during a run, and writing alongside them only slowed them: a scan of
    the WD ViT replica took 15.65 s instead of 15.25 s (16 pictures, 2 cores, 4 runs
    each), so there batches run inline.
    """

    def __init__(
        self,
        on_scores: ScoresCallback[J],
        on_fail: FailCallback[J],
        threaded: bool,
        timings: Timings,
    ) -> None:
        self.on_scores, self.on_fail, self.timings = on_scores, on_fail, timings
        self._failing: dict[int, int] = {}  # model index: single pictures failed in a row
        self._thread = ThreadPoolExecutor(1, "dtindex-infer") if threaded else None
        self._running: deque[tuple[int, Future[tuple[list[Outcome[J]], float]]]] = deque()

    def submit(self, index: int, tagger: Tagger, jobs: list[J], array: NDArray[np.float32]) -> None:
        if self._thread is None:
            self._hand_over(index, _timed(tagger, jobs, array))
            return
        self._running.append((index, self._thread.submit(_timed, tagger, jobs, array)))
        while len(self._running) > 2:
            self._deliver()

    def drain(self) -> None:
        while self._running:
            self._deliver()

    def _deliver(self) -> None:
        index, future = self._running.popleft()
        self._hand_over(index, future.result())

    def _hand_over(self, index: int, result: tuple[list[Outcome[J]], float]) -> None:
        outcomes, seconds = result
        self.timings.model_s += seconds
        for jobs, scores, failure in outcomes:
            if scores is not None:
                self._failing[index] = 0
                self.on_scores(index, jobs, scores)
                continue
            failure = failure or Failure("no result", Kind.MODEL)
            if failure.kind is Kind.MODEL:
                self._failing[index] = self._failing.get(index, 0) + 1
                if self._failing[index] >= STOP_AFTER_FAILURES:
                    raise ModelError(
                        f"{failure.reason}; it failed {STOP_AFTER_FAILURES} pictures in a "
                        "row one by one, so the run stops instead of marking them all failed"
                    )
            self.on_fail(index, jobs[0], failure)

    def close(self) -> None:
        """Wait for the batch in flight (ONNX Runtime cannot be interrupted), drop results."""
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)


def run_pipeline(
    taggers: Sequence[Tagger],
    jobs: Iterable[J],
    work: Callable[[J], Prepared[J]],
    accept: Callable[[Prepared[J]], Iterable[int]],
    on_scores: ScoresCallback[J],
    on_fail: FailCallback[J],
    batch: int,
    budget: Budget,
    stop: threading.Event | None = None,
    timings: Timings | None = None,
    idle: Callable[[], None] | None = None,
) -> None:
    """Prepare jobs ahead in threads; `accept` says which models each prepared job goes to.

    Once `stop` is set no new job starts; filled batches still run (a signal costs at
    most one batch per model). `timings` adds up where the time went. `idle` runs before
    every wait that may block, so a caller can commit and not hold the database's lock.
    """
    idle = idle or (lambda: None)
    timings = timings if timings is not None else Timings()
    batchers = [Batcher[J](t, batch) for t in taggers]
    window = max(budget.decoders * 2, batch * budget.ahead)
    pending: deque[Future[Prepared[J]]] = deque()
    source = iter(jobs)
    inference = Inference[J](on_scores, on_fail, any(t.bound for t in taggers), timings)

    def refill(pool: ThreadPoolExecutor) -> None:
        while len(pending) < window and not (stop and stop.is_set()):
            job = next(source, None)
            if job is None:
                return
            pending.append(pool.submit(_guarded, work, job))

    with ThreadPoolExecutor(budget.decoders, thread_name_prefix="dtindex-decode") as pool:
        try:
            refill(pool)
            while pending and not (stop and stop.is_set()):
                if not pending[0].done():
                    idle()
                waiting_since = time.perf_counter()
                prepared = pending.popleft().result()
                timings.waiting_s += time.perf_counter() - waiting_since
                refill(pool)
                for index in accept(prepared):
                    picture = prepared.pictures.get(index)
                    if picture is None:
                        continue
                    if batchers[index].add(prepared.job, picture):
                        idle()
                        inference.submit(index, taggers[index], *batchers[index].take())
            idle()
            for index, batcher in enumerate(batchers):
                if batcher.jobs:
                    inference.submit(index, taggers[index], *batcher.take())
            inference.drain()
        finally:
            for future in pending:
                future.cancel()
            inference.close()


def _guarded(work: Callable[[J], Prepared[J]], job: J) -> Prepared[J]:
    try:
        return work(job)
    except DecodeError as exc:
        return Prepared(job, error=str(exc), kind=exc.kind, needs=exc.needs)
    except MemoryError:
        return Prepared(job, error="out of memory while decoding", kind=Kind.MEMORY)
