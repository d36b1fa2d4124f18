"""Tagging pictures by path with no index: the steps `dtindex tag` and the library use."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.errors import Failure
from indexer.imaging.messages import Reply, Skipped
from indexer.pipeline.flow import Order

J = TypeVar("J")


class Direct(Generic[J]):
    """Every job is decoded for every model; errors go to `on_error` with the reason."""

    def __init__(
        self,
        path_of: Callable[[J], str],
        models: int,
        on_scores: Callable[[int, list[J], NDArray[np.float32]], None],
        on_error: Callable[[J, str], None],
    ) -> None:
        self.path_of, self.on_scores, self.on_error = path_of, on_scores, on_error
        self.wanted = tuple(range(models))

    def look(self, job: J) -> bytes | None:
        return None

    def decide(self, group: list[tuple[J, Reply | None]]) -> list[Order[J]]:
        return [Order(job, os.fsencode(self.path_of(job)), None, self.wanted) for job, _ in group]

    def unprepared(self, order: Order[J], why: Failure | Skipped) -> None:
        self.on_error(order.job, why.reason)

    def scores(
        self,
        index: int,
        jobs: list[J],
        matrix: NDArray[np.float32],
        embeddings: NDArray[np.float32] | None,
    ) -> None:
        self.on_scores(index, jobs, matrix)  # `tag` prints tags; embeddings stay unused

    def failed(self, index: int, job: J, failure: Failure) -> None:
        self.on_error(job, failure.reason)
