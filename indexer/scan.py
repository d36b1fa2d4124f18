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
import os
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from .context import Context, add_runtime_arguments, batch_size, runtime_options
from .diff import apply_moves, plan_scan
from .errors import UsageError
from .indexing import Counts, Indexer
from .models import Tagger, load
from .progress import Progress
from .store.database import open_index
from .store.index import Index

log = logging.getLogger("dtindex")
FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "roots",
        nargs="*",
        metavar="ROOT",
        type=Path,
        help="gallery folders (default: the config's roots, else those indexed)",
    )
    parser.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="model to tag with (repeatable; default: every enabled model, "
        "else the built-in palette)",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept a root that is now empty and drop its files from the index",
    )
    add_runtime_arguments(parser)


def select_roots(args_roots: Sequence[Path], ctx: Context, index: Index) -> list[Path]:
    if args_roots:
        return list(args_roots)
    if ctx.config.roots:
        return list(ctx.config.roots)
    known = [Path(os.fsdecode(p)) for p in index.root_paths()]
    if not known:
        raise UsageError("no roots: name a gallery folder, or set roots in the config")
    return known


def load_models(names: Sequence[str], ctx: Context, args: argparse.Namespace) -> list[Tagger]:
    entries = [ctx.config.model(n) for n in names] if names else list(ctx.config.default_models())
    options = runtime_options(args, ctx.config)
    return [load(entry.resolve(), options) for entry in entries]


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
        indexer.process(plan.reads, counts)
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
