"""Tagging pictures with one model and no database: the run behind `dtindex tag` and the
library's `load_model(...).tag(...)`, assembled here once so both give the same scores.

The decoder processes start on entering `with` (else with the first run) and stay for
the next run (a `--pipe` stream runs once per chunk of paths that arrived), until
`close`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Self, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.config import Config
from indexer.imaging.sniff import Pictures
from indexer.imaging.workers import DecoderPool
from indexer.model_tables import ModelDef
from indexer.modelfile import model_file_for
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.pipeline.device import DeviceChoice, device_for
from indexer.pipeline.direct import Direct
from indexer.pipeline.flow import Budget, run_pipeline
from indexer.pipeline.inference import Timings

J = TypeVar("J")


def expand_pictures(names: Iterable[str], extensions: frozenset[str]) -> Iterator[str]:
    """Names as given; a folder: the pictures under it (by name, else by their first
    bytes, as a scan finds them), in sorted order."""
    pictures = Pictures(extensions)
    for name in names:
        if os.path.isdir(name):
            for folder, dirs, files in os.walk(name):
                dirs.sort()
                for file in sorted(files):
                    path = os.path.join(folder, file)
                    if os.path.isfile(path) and pictures(os.fsencode(path)):
                        yield path
        else:
            yield name


def definition(name_or_path: str, config: Config) -> ModelDef:
    """A `.model` path (an `.onnx` graph stands for the `.model` beside it), or a model
    name from the config (or the built-in one)."""
    return config.resolve(model_file_for(name_or_path))


class Tagging:
    """`tagger` with its decoder processes."""

    def __init__(self, tagger: Tagger, config: Config, device: DeviceChoice = device_for) -> None:
        """`device`: where the GPU decodes for `tagger`, if it does (see `Indexer`)."""
        self.tagger, self.config = tagger, config
        self.device = device([tagger])
        self.budget = Budget.for_machine(config.decoders)
        self.timings = Timings()  # summed over every run
        self._pool: DecoderPool | None = None

    @classmethod
    def load(cls, model: str | ModelDef, config: Config, runtime: RuntimeOptions) -> Tagging:
        """The model `model` (a name or path: `definition`), loaded with `runtime`."""
        chosen = definition(model, config) if isinstance(model, str) else model
        return cls(load(chosen, runtime), config)

    def run(
        self,
        jobs: Iterable[J],
        batch: int,
        path_of: Callable[[J], str],
        on_scores: Callable[[list[J], NDArray[np.float32]], None],
        on_error: Callable[[J, str], None],
    ) -> None:
        """Tag `jobs` (`J`: whatever the caller tracks a picture by; `path_of` gives its
        path) in batches of `batch`, in order: `on_scores` gets each batch's jobs with
        their scores in the model's tag order, `on_error` each job that could not be
        read, with the reason."""
        pool = self._decoders()
        steps = Direct[J](path_of, 1, lambda _, done, scores: on_scores(done, scores), on_error)
        run_pipeline([self.tagger], jobs, steps, pool, batch, self.budget, timings=self.timings,
                     device=self.device)  # fmt: skip

    def _decoders(self) -> DecoderPool:
        if self._pool is None:
            config = self.config
            timeout = config.decode_timeout
            self._pool = DecoderPool(self.budget.decoders, config.max_pixels, timeout)
        return self._pool

    def close(self) -> None:
        """Stop the decoder processes (also done on leaving a `with` block)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Self:
        """Starts the decoder processes (else the first run does)."""
        self._decoders()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
