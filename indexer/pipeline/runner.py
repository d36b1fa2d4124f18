"""Where a tagging run's decoding and models run: here (`Local`) or on a Ray cluster
(`fanout.Cluster`), behind one interface.

Either is handed the same jobs and the same `Steps` callbacks, run in the calling thread
in job order, so a caller (the incremental indexer) neither knows nor branches on where
the work is done: counts, failures, exit codes and what a stop leaves are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from indexer.imaging.workers import DecoderPool
from indexer.models.runtime import Tagger
from indexer.pipeline.device import Device
from indexer.pipeline.flow import Budget, Steps, run_pipeline
from indexer.pipeline.inference import Timings

J = TypeVar("J")


class Runner(Protocol):
    def run(
        self,
        taggers: Sequence[Tagger],
        jobs: Iterable[J],
        steps: Steps[J],
        pool: DecoderPool,
        batch: int,
        stop: threading.Event | None = None,
        timings: Timings | None = None,
        idle: Callable[[], None] | None = None,
    ) -> None:
        """Run `jobs` through `steps` (see `flow.run_pipeline`); `pool` looks at files
        here, and decodes them too when the run is local."""


@dataclass(frozen=True)
class Local:
    """Decoder processes and ONNX Runtime on this machine; where `device` is given (a run
    of one model, `device.device_for`), the GPU decodes the JPEGs."""

    budget: Budget
    device: Device | None = None

    def run(
        self,
        taggers: Sequence[Tagger],
        jobs: Iterable[J],
        steps: Steps[J],
        pool: DecoderPool,
        batch: int,
        stop: threading.Event | None = None,
        timings: Timings | None = None,
        idle: Callable[[], None] | None = None,
    ) -> None:
        budget, device = self.budget, self.device
        run_pipeline(taggers, jobs, steps, pool, batch, budget, stop, timings, idle, device)
