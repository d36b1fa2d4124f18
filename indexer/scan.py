"""`dtindex scan`: bring the index up to date with the gallery and tag what is missing.

A gallery that did not change is walked and stat'ed, nothing is read and no model runs.
New and changed pictures are read once (hashed and decoded from the same bytes); each
distinct content is tagged once per model version, however many names it has. Pictures
that cannot be decoded are recorded with the reason and not retried until they change.

Exit status: 0 when the index is complete (pictures that cannot be decoded are recorded
and count as done); 1 when it is not: a database or model error, a missing or unmounted
root (nothing is then removed), or pictures that failed for reasons a later scan retries
(a crash, a timeout, permissions, I/O, the model); 128+N when stopped by signal N
(SIGINT, SIGTERM: the batch in flight is finished first, a rerun resumes).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from .context import (
    Context,
    add_gallery_arguments,
    add_runtime_arguments,
    batch_size,
    load_models,
    select_roots,
)
from .diff import apply_moves, plan_scan
from .errors import Incomplete, Interrupted
from .indexing import Indexer
from .jobs import Counts
from .models import Tagger
from .progress import Progress
from .signals import stop_on_signals
from .store.database import open_index
from .store.index import Index

log = logging.getLogger("dtindex")
FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gallery_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept a root that is now empty and drop its files from the index",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="retry every failed picture, also those that could not be decoded",
    )
    add_runtime_arguments(parser)


def scan(
    engine: Engine,
    roots: list[Path],
    taggers: Sequence[Tagger],
    ctx: Context,
    batch: int,
    progress: Progress,
    allow_empty: bool = False,
    stop: threading.Event | None = None,
    retry_failed: bool = False,
) -> Counts:
    counts = Counts()
    indexer = Indexer(
        engine, taggers, ctx.config, batch, progress, stop=stop, retry_failed=retry_failed
    )
    try:
        started = time.time_ns()
        plan = plan_scan(indexer.index, roots, ctx.config.scan, counts, allow_empty)
        apply_moves(indexer.index, plan, counts)
        progress.to_hash = len(plan.reads)
        tagging_started = time.perf_counter()
        indexer.process(plan.reads, counts)
        if counts.tagged:
            log.info("%s", indexer.timings.summary(time.perf_counter() - tagging_started))
        if stop is None or not stop.is_set():
            for root_id in plan.root_ids:
                indexer.index.mark_scanned(root_id, started)
    finally:
        indexer.close()
    return counts


def run(args: argparse.Namespace, ctx: Context) -> int:
    batch = batch_size(args, ctx.config)
    taggers = load_models(args.model, ctx, args)
    engine = open_index(ctx.database_path())
    try:
        with engine.connect() as conn:
            roots = select_roots(args.roots, ctx, Index(conn))
        progress = Progress(ctx.stderr_is_tty and not args.json)
        stop = threading.Event()
        try:
            with stop_on_signals(stop) as received:
                counts = scan(
                    engine,
                    roots,
                    taggers,
                    ctx,
                    batch,
                    progress,
                    args.allow_empty,
                    stop,
                    args.retry_failed,
                )
        finally:
            progress.finish()
    finally:
        engine.dispose()
    if received:
        raise Interrupted(received[0])
    if args.json:
        ctx.stdout.write(json.dumps(counts.as_dict()).encode() + b"\n")
        ctx.stdout.flush()
    summary = ", ".join(f"{k} {v}" for k, v in counts.as_dict().items())
    log.info("scan done: %s", summary)
    if counts.to_retry:
        raise Incomplete(
            f"the index is incomplete: {counts.to_retry} pictures failed for reasons "
            "the next scan retries (dtindex status lists them)"
        )
    return 0
