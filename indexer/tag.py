"""`dtindex tag`: deeptagger's job without a database, with deeptagger's output.

Prints `path<TAB>tag<TAB>weight` (`%.2f`) for every tag above the threshold, in model
order, flushed per batch. Pictures that cannot be read are named on stderr and make the
exit status 1; the others are still tagged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .config import DEFAULT_THRESHOLD
from .context import Context, add_runtime_arguments, batch_size, runtime_options, threshold_value
from .decoders import DecoderPool
from .errors import DecodeError
from .models import load
from .pipeline import Budget, Prepared, Timings, prepare_for, run_pipeline
from .walk import is_picture

log = logging.getLogger("dtindex")
FAILURE = 2  # usage, config and model errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="a .model file, or a model name from the config"
    )
    parser.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="pictures to tag; a folder means every picture under it",
    )
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        metavar="T",
        help="print tags whose weight is above T (default: the model's, else 0.1)",
    )
    parser.add_argument(
        "--pipe",
        action="store_true",
        help="read picture paths from standard input, one per line, as a stream",
    )
    add_runtime_arguments(parser)


def _expand(names: Iterable[str], extensions: frozenset[str]) -> Iterator[str]:
    wanted = {e.encode() for e in extensions}
    for name in names:
        if os.path.isdir(name):
            for folder, dirs, files in os.walk(name):
                dirs.sort()
                for file in sorted(files):
                    if is_picture(os.fsencode(file), wanted):
                        yield os.path.join(folder, file)
        else:
            yield name


def _stdin_paths() -> Iterator[str]:
    for line in sys.stdin.buffer:  # a stream: paths are tagged while more arrive
        path = line.rstrip(b"\r\n")
        if path:
            yield os.fsdecode(path)


def run(args: argparse.Namespace, ctx: Context) -> int:
    definition = ctx.resolve_model(args.model)
    threshold = threshold_value(args.threshold, definition.threshold or DEFAULT_THRESHOLD)
    batch = batch_size(args, ctx.config)
    tagger = load(definition, runtime_options(args, ctx.config, ctx.env))
    names = _stdin_paths() if args.pipe else iter(args.images)
    paths = _expand(names, ctx.config.scan.extensions)
    tag_bytes = [name.encode("utf-8", "surrogateescape") for name in tagger.tags.names]
    failures = 0
    max_pixels = ctx.config.max_pixels

    def work(path: str) -> Prepared[str]:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DecodeError(exc.strerror or str(exc)) from None
        return Prepared(path, prepare_for(pool, data, [tagger], [0])[0])

    def accept(prepared: Prepared[str]) -> list[int]:
        nonlocal failures
        if prepared.error is not None:
            failures += 1
            log.error("%s: %s", prepared.job, prepared.error)
            return []
        return [0]

    def on_scores(_: int, jobs: list[str], scores: NDArray[np.float32]) -> None:
        lines = []
        for path, row in zip(jobs, scores, strict=True):
            prefix = os.fsencode(path) + b"\t"
            for index in np.flatnonzero(row > threshold):
                lines.append(b"%s%s\t%.2f\n" % (prefix, tag_bytes[index], row[index]))
        ctx.stdout.write(b"".join(lines))
        ctx.stdout.flush()

    def on_fail(_: int, path: str, reason: str) -> None:
        nonlocal failures
        failures += 1
        log.error("%s: %s", path, reason)

    budget = Budget.for_machine(ctx.config.decoders)
    timings, started = Timings(), time.perf_counter()
    with DecoderPool(budget.decoders, max_pixels, ctx.config.decode_timeout) as pool:
        run_pipeline(
            [tagger], paths, work, accept, on_scores, on_fail, batch, budget, timings=timings
        )
    log.info("%s", timings.summary(time.perf_counter() - started))
    return 1 if failures else 0
