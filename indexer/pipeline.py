"""The tagging pipeline shared by `tag`, `scan` and `watch`.

Worker threads read, hash, decode and fit pictures (Pillow, hashlib and xxhash release
the GIL) in a bounded window ahead of the model, while the calling thread fills each
model's float32 batch array in place and runs ONNX Runtime (which releases it too).
Callbacks run in the calling thread, in job order, so they may use the database.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from .decoders import DecoderPool, Target
from .errors import DecodeError, ModelError
from .imaging import fill
from .models import Tagger

log = logging.getLogger("dtindex")
J = TypeVar("J")


@dataclass
class Prepared(Generic[J]):
    """A job after the worker: its pictures per model index, or why it has none."""

    job: J
    pictures: dict[int, NDArray[np.uint8]] = field(default_factory=dict)
    error: str | None = None
    info: dict[str, object] = field(default_factory=dict)


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
FailCallback = Callable[[int, J, str], None]


def run_inference(
    index: int,
    tagger: Tagger,
    jobs: list[J],
    array: NDArray[np.float32],
    on_scores: ScoresCallback[J],
    on_fail: FailCallback[J],
) -> None:
    """Run a batch; a run-time failure retries it in halves, down to single pictures."""
    try:
        scores = tagger.run(array)
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime's errors are untyped (out of memory, provider)
        if len(jobs) == 1:
            on_fail(index, jobs[0], f"model {tagger.name} failed: {exc}")
            return
        log.warning("%s: batch of %d failed (%s); retrying smaller", tagger.name, len(jobs), exc)
        half = len(jobs) // 2
        run_inference(index, tagger, jobs[:half], array[:half], on_scores, on_fail)
        run_inference(index, tagger, jobs[half:], array[half:], on_scores, on_fail)
        return
    on_scores(index, jobs, scores)


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
) -> None:
    """Prepare jobs ahead in threads; `accept` says which models each prepared job goes to.

    Once `stop` is set no new job starts; the batches already filled still run, so a
    signal costs at most one batch of inference per model.
    """
    batchers = [Batcher[J](t, batch) for t in taggers]
    window = max(budget.decoders * 2, batch * budget.ahead)
    pending: deque[Future[Prepared[J]]] = deque()
    source = iter(jobs)

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
                prepared = pending.popleft().result()
                refill(pool)
                for index in accept(prepared):
                    picture = prepared.pictures.get(index)
                    if picture is None:
                        continue
                    if batchers[index].add(prepared.job, picture):
                        run_inference(
                            index, taggers[index], *batchers[index].take(), on_scores, on_fail
                        )
            for index, batcher in enumerate(batchers):
                if batcher.jobs:
                    run_inference(index, taggers[index], *batcher.take(), on_scores, on_fail)
        finally:
            for future in pending:
                future.cancel()


def _guarded(work: Callable[[J], Prepared[J]], job: J) -> Prepared[J]:
    try:
        return work(job)
    except DecodeError as exc:
        return Prepared(job, error=str(exc))
    except MemoryError:
        return Prepared(job, error="out of memory while decoding")
