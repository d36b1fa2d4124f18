"""A whole scan of some roots: plan against the index, apply moves, read and tag.

The one sequence behind `dtindex scan`, the periodic rescans of `watch` and
`indexer.scan` in the library.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from indexer.config import Config
from indexer.gallery.forgotten import forgotten_error
from indexer.gallery.headway import Listener
from indexer.gallery.incremental import Indexer
from indexer.gallery.jobs import Counts
from indexer.gallery.plan import apply_moves, plan_scan
from indexer.models.runtime import Tagger
from indexer.pipeline.fanout import Cluster

log = logging.getLogger("dtindex")


def scan_roots(
    engine: Engine,
    roots: Sequence[Path],
    taggers: Sequence[Tagger],
    config: Config,
    batch: int,
    progress: Listener | None = None,
    *,
    allow_empty: bool = False,
    stop: threading.Event | None = None,
    retry_failed: bool = False,
    cluster: Cluster | None = None,
) -> Counts:
    """Bring the index up to date with `roots` (absolute paths) and tag what is missing.

    `progress` follows the reading and tagging, and hears when they are over, before
    the summary. Roots are marked scanned only when the scan was not stopped. With a
    `cluster`, decoding and inference run on Ray (see `pipeline.fanout`).
    """
    counts = Counts()
    indexer = Indexer(
        engine, taggers, config, batch, progress, stop=stop, retry_failed=retry_failed,
        cluster=cluster,
    )  # fmt: skip
    try:
        started = time.time_ns()
        plan = plan_scan(indexer.index, list(roots), config.scan, counts, allow_empty)
        tagging_started = time.perf_counter()
        try:
            apply_moves(indexer.index, plan, counts)
            indexer.process(plan.reads, counts, wait=True)
        except SQLAlchemyError:  # a root's row deleted under us: say which, not the key
            indexer.index.settle()
            ids = {os.fsencode(root): i for root, i in zip(roots, plan.root_ids, strict=True)}
            forgotten = forgotten_error(indexer.index, ids)
            if forgotten is None:
                raise
            raise forgotten from None
        if progress is not None:
            progress.done()
        if counts.tagged:
            log.info("%s", indexer.timings.summary(time.perf_counter() - tagging_started))
        if stop is None or not stop.is_set():
            for root_id in plan.root_ids:
                indexer.index.mark_scanned(root_id, started)
    finally:
        indexer.close()
    return counts
