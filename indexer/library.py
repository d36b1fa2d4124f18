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
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

from indexer.config import Config, load_config, locate_config, threshold_or_default
from indexer.gallery.jobs import Counts
from indexer.imaging.workers import DecoderPool
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.pipeline.direct import Direct
from indexer.pipeline.flow import Budget, run_pipeline

PathLike = str | os.PathLike[str]


def _path(path: PathLike) -> str:
    """A path as a shell would give it: `~` is the user's home."""
    return os.path.expanduser(os.fspath(path))


def _config(config: Config | PathLike | None) -> Config:
    """A Config as given; a path to a deeptagger.toml; None: the CLI's own lookup."""
    if isinstance(config, Config):
        return config
    if config is not None:
        return load_config(Path(_path(config)), required=True)
    path, named = locate_config(None, os.environ)
    return load_config(path, required=named)


def _runtime(config: Config, providers: Sequence[str] | None) -> RuntimeOptions:
    """The CLI's options (`RuntimeOptions.cached`: its caches), `providers` for -o/--cpu."""
    if providers is None:
        return RuntimeOptions.cached(config.threads, os.environ)
    if list(providers) == ["CPUExecutionProvider"]:
        return RuntimeOptions.cached(config.threads, os.environ, cpu=True)
    asked = tuple((p, ()) for p in providers)
    return RuntimeOptions.cached(config.threads, os.environ, provider_options=asked)


class Model:
    """A loaded model. `tag` yields `(path, {tag: score})` per picture, in input order;
    pictures that cannot be read are skipped and listed in `failures` (path, reason)."""

    def __init__(self, tagger: Tagger, config: Config) -> None:
        self.tagger, self.config = tagger, config
        self.failures: list[tuple[str, str]] = []
        self._budget = Budget.for_machine(config.decoders)
        self._pool: DecoderPool | None = None

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
        pool = self._decoders()
        results: dict[int, dict[str, float]] = {}
        names = self.tagger.tags.names

        def on_scores(_: int, jobs: list[tuple[int, str]], scores: NDArray[np.float32]) -> None:
            for (number, _path), row in zip(jobs, scores, strict=True):
                chosen = np.flatnonzero(row > limit)
                results[number] = {names[i]: float(row[i]) for i in chosen}

        def on_error(job: tuple[int, str], reason: str) -> None:
            self.failures.append((job[1], reason))

        steps = Direct[tuple[int, str]](lambda job: job[1], 1, on_scores, on_error)
        jobs = list(enumerate(paths))
        run_pipeline([self.tagger], jobs, steps, pool, size, self._budget)
        for number, path in jobs:
            if number in results:
                yield path, results[number]

    def _decoders(self) -> DecoderPool:
        if self._pool is None:
            timeout = self.config.decode_timeout
            self._pool = DecoderPool(self._budget.decoders, self.config.max_pixels, timeout)
        return self._pool

    def close(self) -> None:
        """Stop the decoder processes (also done on leaving a `with` block)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

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
    settings = _config(config)
    definition = settings.resolve(_path(path_or_name))
    return Model(load(definition, _runtime(settings, providers)), settings)


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
    from indexer.gallery.scanning import scan_roots
    from indexer.store.engine import open_index

    settings = _config(config)
    entries = [settings.model(n) for n in models] if models else settings.default_models()
    runtime = _runtime(settings, None)
    taggers = [load(entry.resolve(), runtime) for entry in entries]
    engine = open_index(_path(db))
    try:
        absolute = [Path(os.path.abspath(_path(root))) for root in roots]
        return scan_roots(
            engine, absolute, taggers, settings, batch or settings.batch, retry_failed=retry_failed
        )
    finally:
        engine.dispose()
