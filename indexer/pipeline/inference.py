"""Running full batches through ONNX Runtime and handing results over in order.

A batch is a view of a shared-memory ring that decoders filled (see `pipeline.lanes`),
or its rows on the model's device (`pipeline.device`);
a slot whose picture failed to decode is a hole, run with the others and dropped from
the results. With a GPU provider batches run in a thread of their own; on the CPU,
inline. A model that fails single pictures several times in a row stops the run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.errors import Failure, Kind, ModelError
from indexer.models.bound import Input
from indexer.models.runtime import Tagger

log = logging.getLogger("dtindex")
J = TypeVar("J")


NOT_A_NUMBER = Failure("model output is not a number", Kind.OUTPUT)
# A model failing this many single pictures in a row for no fault of theirs stops the
# run: out of memory on the GPU for every picture must not mark the gallery failed.
STOP_AFTER_FAILURES = 3


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


Matrix = NDArray[np.float32]
# Scores, and embeddings for a model that stores them; one row per picture.
ScoresCallback = Callable[[int, list[J], Matrix, Matrix | None], None]
FailCallback = Callable[[int, J, Failure], None]
# What one batch came to: (jobs, scores, embeddings, None), or ([job], None, None, why)
# for a picture the model failed on.
Outcome = tuple[list[J], Matrix | None, Matrix | None, Failure | None]


def _finite(slots: list[J | None], scores: Matrix, embeddings: Matrix | None) -> list[Outcome[J]]:
    """Rows of holes are dropped; pictures with a NaN or infinite score or embedding value
    fail (a result is never stored without them)."""
    ok = np.isfinite(scores).all(axis=1)
    if embeddings is not None:
        ok &= np.isfinite(embeddings).all(axis=1)
    finite = [bool(good) for good in np.asarray(ok)]
    if all(finite) and None not in slots:
        return [(slots, scores, embeddings, None)]  # type: ignore[list-item]
    kept = [i for i, job in enumerate(slots) if job is not None and finite[i]]
    outcomes: list[Outcome[J]] = []
    if kept:
        vectors = embeddings[kept] if embeddings is not None else None
        outcomes.append(([slots[i] for i in kept], scores[kept], vectors, None))  # type: ignore[misc]
    bad = [job for job, ok in zip(slots, finite, strict=True) if job is not None and not ok]
    return outcomes + [([job], None, None, NOT_A_NUMBER) for job in bad]


def infer(tagger: Tagger, slots: list[J | None], array: Input) -> list[Outcome[J]]:
    """Run a batch (None: a hole); a run-time failure retries it in halves, down to single
    pictures."""
    try:
        return _finite(slots, *tagger.run_all(array))
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime's errors are untyped (out of memory, provider)
        if len(slots) == 1:
            if slots[0] is None:
                return []
            why = Failure(f"model {tagger.name} failed: {exc}", Kind.MODEL)
            return [([slots[0]], None, None, why)]
        log.warning("%s: batch of %d failed (%s); retrying smaller", tagger.name, len(slots), exc)
        half = len(slots) // 2
        return infer(tagger, slots[:half], array[:half]) + infer(tagger, slots[half:], array[half:])


def _timed(tagger: Tagger, slots: list[J | None], array: Input) -> tuple[list[Outcome[J]], float]:
    start = time.perf_counter()
    outcomes = infer(tagger, slots, array)
    return outcomes, time.perf_counter() - start


Done = Callable[[], None]


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
        self._running: deque[tuple[int, Future[tuple[list[Outcome[J]], float]], Done]] = deque()

    def submit(
        self,
        index: int,
        tagger: Tagger,
        slots: list[J | None],
        array: Input,
        done: Done,
    ) -> None:
        """Run a batch; `done` is called once its memory may be written again."""
        if self._thread is None:
            result = _timed(tagger, slots, array)
            done()
            self.hand_over(index, result)
            return
        self._running.append((index, self._thread.submit(_timed, tagger, slots, array), done))
        while len(self._running) > 2:
            self._deliver()

    @property
    def busy(self) -> bool:
        """Whether a batch is running or waiting in the inference thread."""
        return bool(self._running)

    def deliver_one(self) -> None:
        """Wait for the oldest batch in the inference thread and hand it over."""
        if self._running:
            self._deliver()

    def deliver_finished(self) -> None:
        """Hand over the batches the inference thread has finished, without waiting."""
        while self._running and self._running[0][1].done():
            self._deliver()

    def drain(self) -> None:
        while self._running:
            self._deliver()

    def _deliver(self) -> None:
        index, future, done = self._running.popleft()
        try:
            result = future.result()
        finally:
            done()
        self.hand_over(index, result)

    def hand_over(self, index: int, result: tuple[list[Outcome[J]], float]) -> None:
        """Give a batch's outcomes to the callbacks (also those run elsewhere, see
        `pipeline.fanout`), stopping the run when a model keeps failing."""
        outcomes, seconds = result
        self.timings.model_s += seconds
        for jobs, scores, embeddings, failure in outcomes:
            if scores is not None:
                self._failing[index] = 0
                self.on_scores(index, jobs, scores, embeddings)
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
