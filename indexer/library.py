"""The Python API: tag pictures with a model, scan roots into an index.

    import indexer
    with indexer.load_model("wd3") as model:
        for path, tags in model.tag(["a.jpg", "b.png"], threshold=0.35):
            print(path, sorted(tags, key=tags.get, reverse=True)[:5])

The same code as the CLI runs underneath (decoder processes, batching, the model's
preparation), so the scores are exactly those `dtindex tag` prints. The decoders run none
of the caller's code (`imaging.spawning`): no `if __name__ == "__main__":` guard is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

from indexer.config import Config, threshold_or_default
from indexer.core import places
from indexer.core.index import Index
from indexer.core.places import PathLike
from indexer.core.records import Counts
from indexer.core.tagging import Tagging
from indexer.models.runtime import RuntimeOptions


def _runtime(config: Config, providers: Sequence[str] | None) -> RuntimeOptions:
    """The CLI's options (`core.places.runtime`: its caches), `providers` for -o/--cpu."""
    if providers is None:
        return places.runtime(config, os.environ)
    if list(providers) == ["CPUExecutionProvider"]:
        return places.runtime(config, os.environ, cpu=True)
    return places.runtime(config, os.environ, provider_options=[(p, ()) for p in providers])


class Model:
    """A loaded model. `tag` yields `(path, {tag: score})` per picture, in input order;
    pictures that cannot be read are skipped and listed in `failures` (path, reason)."""

    def __init__(self, tagging: Tagging) -> None:
        self.tagging, self.tagger, self.config = tagging, tagging.tagger, tagging.config
        self.failures: list[tuple[str, str]] = []

    @property
    def name(self) -> str:
        return self.tagger.name

    @property
    def version(self) -> str:
        return self.tagger.version

    @property
    def tags(self) -> tuple[str, ...]:
        return self.tagger.tags.names

    def tag(
        self,
        paths: Iterable[PathLike],
        *,
        threshold: float | None = None,
        batch: int | None = None,
    ) -> Iterator[tuple[str, dict[str, float]]]:
        """Scores above `threshold` (default: the model's, else 0.1) of each picture;
        `failures` then lists this call's pictures that could not be read."""
        self.failures = []
        limit = threshold_or_default(
            self.tagger.definition.threshold if threshold is None else threshold
        )
        size = batch or self.config.batch
        chunk: list[str] = []
        for path in paths:
            chunk.append(os.fspath(path))
            if len(chunk) == size * 4:
                yield from self._chunk(chunk, limit, size)
                chunk = []
        if chunk:
            yield from self._chunk(chunk, limit, size)

    def _chunk(
        self, paths: list[str], limit: float, size: int
    ) -> Iterator[tuple[str, dict[str, float]]]:
        results: dict[int, dict[str, float]] = {}
        names = self.tagger.tags.names

        def on_scores(jobs: list[tuple[int, str]], scores: NDArray[np.float32]) -> None:
            for (number, _path), row in zip(jobs, scores, strict=True):
                chosen = np.flatnonzero(row > limit)
                results[number] = {names[i]: float(row[i]) for i in chosen}

        def on_error(job: tuple[int, str], reason: str) -> None:
            self.failures.append((job[1], reason))

        jobs = list(enumerate(paths))
        self.tagging.run(jobs, size, lambda job: job[1], on_scores, on_error)
        for number, path in jobs:
            if number in results:
                yield path, results[number]

    def close(self) -> None:
        """Stop the decoder processes (also done on leaving a `with` block)."""
        self.tagging.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def load_model(
    path_or_name: PathLike,
    *,
    config: Config | PathLike | None = None,
    providers: Sequence[str] | None = None,
) -> Model:
    """A `.model` file, or a model named in the config (or the built-in `palette`).

    `providers` asks for ONNX Runtime execution providers by name (for example
    `["CUDAExecutionProvider"]`, or `["CPUExecutionProvider"]` for the CPU only).
    """
    settings = places.settings(config, os.environ)
    name = os.path.expanduser(os.fspath(path_or_name))
    return Model(Tagging.load(name, settings, _runtime(settings, providers)))


def scan(
    roots: Sequence[PathLike],
    *,
    db: PathLike,
    config: Config | PathLike | None = None,
    models: Sequence[str] = (),
    batch: int | None = None,
    retry_failed: bool = False,
) -> Counts:
    """Scan `roots` into the index at `db` with `models` (default: the enabled ones);
    returns the counts `dtindex scan --json` prints (check `to_retry` and `failed`)."""
    with Index.open(db, config) as index:
        return index.scan(roots, models=models, batch=batch, retry_failed=retry_failed)
