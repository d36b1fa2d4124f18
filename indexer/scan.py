"""`dtindex scan`: bring the index up to date with the gallery and tag what is missing.

A gallery that did not change is walked and stat'ed, nothing is read and no model runs.
New and changed pictures are read once (hashed and decoded from the same bytes); each
distinct content is tagged once per model version, however many names it has. Pictures
that cannot be decoded are recorded with the reason and not retried until they change.

Exit status: 0 when the scan completed (even with undecodable pictures), 1 when it could
not (database, model, or a missing or unmounted root: nothing is then removed).
"""

from __future__ import annotations

import argparse
import json
import logging
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
from .indexing import Indexer
from .jobs import Counts
from .models import Tagger
from .progress import Progress
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
    add_runtime_arguments(parser)


def scan(
    engine: Engine,
    roots: list[Path],
    taggers: Sequence[Tagger],
    ctx: Context,
    batch: int,
    progress: Progress,
    allow_empty: bool = False,
) -> Counts:
    counts = Counts()
    indexer = Indexer(engine, taggers, ctx.config, batch, progress)
    try:
        started = time.time_ns()
        plan = plan_scan(indexer.index, roots, ctx.config.scan, counts, allow_empty)
        apply_moves(indexer.index, plan, counts)
        progress.to_hash = len(plan.reads)
        tagging_started = time.perf_counter()
        indexer.process(plan.reads, counts)
        if counts.tagged:
            log.info("%s", indexer.timings.summary(time.perf_counter() - tagging_started))
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
        try:
            counts = scan(engine, roots, taggers, ctx, batch, progress, args.allow_empty)
        finally:
            progress.finish()
    finally:
        engine.dispose()
    if args.json:
        ctx.stdout.write(json.dumps(counts.as_dict()).encode() + b"\n")
        ctx.stdout.flush()
    summary = ", ".join(f"{k} {v}" for k, v in counts.as_dict().items())
    log.info("scan done: %s", summary)
    return 0
