"""How far a copy of a graph (int8, fp16) moves a model's scores from fp32, and its speed.

Whether a copy is good enough depends on the real weights (their ranges decide what int8
loses) and on the pictures, so random-weight replicas cannot answer it: `dtindex model
check` measures it with the user's model on the user's pictures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexer.models.runtime import Tagger

TOP = 20


@dataclass(frozen=True)
class Run:
    """Scores for every picture, one row each, and the seconds inference alone took."""

    scores: NDArray[np.float32]
    seconds: float

    @property
    def pictures_per_s(self) -> float:
        return len(self.scores) / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class Agreement:
    """A copy's scores against fp32's, over the same pictures."""

    flipped: int  # (picture, tag) decisions on the other side of the threshold
    decisions: int  # pictures x tags
    top: int  # how many of the highest scores are compared (20, or fewer tags)
    top_overlap: float  # mean over pictures of |top(copy) ∩ top(fp32)| / top
    max_difference: float  # the largest absolute score difference


def timed_run(tagger: Tagger, batches: Sequence[NDArray[np.float32]]) -> Run:
    """Run every batch; the first is run once before, untimed, since a session's first run
    pays for allocations and kernel choices that later ones do not."""
    tagger.run(batches[0])
    started = time.perf_counter()
    parts = [tagger.run(batch) for batch in batches]
    seconds = time.perf_counter() - started
    return Run(np.concatenate(parts), seconds)


def agreement(reference: Run, copy: Run, threshold: float) -> Agreement:
    """Compare decisions at `threshold` (score above it: tagged), top tags and scores."""
    base, other = reference.scores, copy.scores
    if base.shape != other.shape:
        raise ValueError(f"scores of shape {other.shape} against {base.shape}")
    flipped = int(np.count_nonzero((base > threshold) != (other > threshold)))
    top = min(TOP, base.shape[1])
    overlap = [
        len(np.intersect1d(_highest(row_a, top), _highest(row_b, top))) / top
        for row_a, row_b in zip(base, other, strict=True)
    ]
    difference = float(np.abs(base - other).max()) if base.size else 0.0
    return Agreement(flipped, base.size, top, float(np.mean(overlap)), difference)


def _highest(row: NDArray[np.float32], count: int) -> NDArray[np.intp]:
    return np.argpartition(-row, count - 1)[:count]
