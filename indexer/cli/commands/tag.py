"""`dtindex tag`: deeptagger's job without a database, with deeptagger's output.

Prints `path<TAB>tag<TAB>weight` (`%.2f`) for every tag above the threshold, in model
order, flushed per batch. Pictures that cannot be read are named on stderr and make the
exit status 1; the others are still tagged.

With `--pipe`, as deeptagger, each path is answered as soon as it arrives, while standard
input stays open: the pipeline reads ahead and waits for full batches, so it is run on
the paths that have arrived so far (batched together), then on the next ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from indexer.cli.options import (
    Context,
    add_runtime_arguments,
    batch_size,
    runtime_options,
    threshold_value,
)
from indexer.config import threshold_or_default
from indexer.core.tagging import Tagging, definition, expand_pictures
from indexer.errors import UsageError

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


class _Arrivals:
    """Paths from standard input, read by a thread as they arrive.

    `chunks` gives what has arrived so far, waiting only for the first path of each, so
    a lone path is tagged at once and paths written together are still batched together.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.ended = self.failed = False
        # A daemon: a process that stops early must not wait for a pipe that stays open.
        threading.Thread(target=self._read, name="dtindex-stdin", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin.buffer:
                path = line.rstrip(b"\r\n")
                if path:
                    self._queue.put(os.fsdecode(path))
        except (OSError, ValueError) as exc:  # a read error ends the input, and fails
            self.failed = True
            log.error("standard input: %s", exc)
        finally:
            self._queue.put(None)

    def _available(self) -> Iterator[str]:
        item = self._queue.get()  # the first path of a chunk: wait for it
        while item is not None:
            yield item
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
        self.ended = True

    def chunks(self) -> Iterator[Iterator[str]]:
        while not self.ended:
            yield self._available()


def run(args: argparse.Namespace, ctx: Context) -> int:
    if not args.images and not args.pipe:  # checked first: before a model is loaded
        raise UsageError(
            "no pictures given: name pictures or folders after the model, "
            "or pass --pipe to read their paths from standard input"
        )
    model = definition(args.model, ctx.config)
    threshold = threshold_value(args.threshold, threshold_or_default(model.threshold))
    batch = batch_size(args, ctx.config)
    tagging = Tagging.load(model, ctx.config, runtime_options(args, ctx.config, ctx.env))
    extensions = ctx.config.scan.extensions
    arrivals = _Arrivals() if args.pipe else None
    chunks = arrivals.chunks() if arrivals else iter([iter(args.images)])
    names = tagging.tagger.tags.names
    tag_tab = [name.encode("utf-8", "surrogateescape") + b"\t" for name in names]
    failures = 0

    def on_scores(jobs: list[str], scores: NDArray[np.float32]) -> None:
        lines = []
        for path, row in zip(jobs, scores, strict=True):
            prefix = os.fsencode(path) + b"\t"
            chosen = np.flatnonzero(row > threshold)
            for index, weight in zip(chosen.tolist(), row[chosen].tolist(), strict=True):
                lines.append(b"%s%s%.2f\n" % (prefix, tag_tab[index], weight))
        ctx.stdout.write(b"".join(lines))
        ctx.stdout.flush()

    def on_error(path: str, reason: str) -> None:
        nonlocal failures
        failures += 1
        log.error("%s: %s", path, reason)

    started = time.perf_counter()
    with tagging:  # the decoders start now, before the first path arrives
        for chunk in chunks:
            paths = expand_pictures(chunk, extensions)
            tagging.run(paths, batch, lambda path: path, on_scores, on_error)
    log.info("%s", tagging.timings.summary(time.perf_counter() - started))
    return 1 if failures or (arrivals and arrivals.failed) else 0
