"""A whole scan of some roots: plan against the index, apply moves, read and tag.

The one sequence behind `dtindex scan`, the reconciling rescans of `watch` and
`Index.scan` in the library (`rescan`), so each of them marks the roots scanned when it
went through to the end: `dtindex status` shows the last one, a watch's included.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from indexer.pipeline.device import DeviceChoice, device_for
from indexer.pipeline.fanout import Cluster

log = logging.getLogger("dtindex")


@dataclass(frozen=True)
class Pass:
    """One rescan: its counts, the paths it read, when its reading began
    (`time.perf_counter`, after the walk), and the time the roots were marked scanned
    with (ns since the epoch; None: stopped, not marked)."""

    counts: Counts
    read: list[bytes]
    reading_started: float
    scanned_ns: int | None


def rescan(
    indexer: Indexer,
    roots: Sequence[Path],
    allow_empty: bool = False,
    wait: bool = False,
    held: Mapping[bytes, int] | None = None,
) -> Pass:
    """Bring the index up to date with `roots` (absolute paths) and tag what is missing;
    `wait`: also for the pictures other processes hold (`gallery.waiting`); `held`: the
    roots a running watch holds (path: id), whose rows are not made anew.

    The roots are marked scanned (at the time the walk began) only when the pass was not
    stopped. A root forgotten (`dtindex forget`) under it is a ScanError naming it."""
    counts = Counts()
    started = time.time_ns()
    scan = indexer.config.scan
    plan = plan_scan(indexer.index, list(roots), scan, counts, allow_empty, held)
    reading_started = time.perf_counter()
    try:
        apply_moves(indexer.index, plan, counts)
        indexer.process(plan.reads, counts, wait=wait)
    except SQLAlchemyError:  # a root's row deleted under us: say which, not the key
        indexer.index.settle()
        forgotten = forgotten_error(indexer.index, _ids(roots, plan.root_ids))
        if forgotten is None:
            raise
        raise forgotten from None
    indexer.listener.done()
    stopped = indexer.stop is not None and indexer.stop.is_set()
    _finish(indexer, roots, plan.root_ids, None if stopped else started)
    read = [job.path for job in plan.reads]
    return Pass(counts, read, reading_started, None if stopped else started)


def _ids(roots: Sequence[Path], root_ids: Sequence[int]) -> dict[bytes, int]:
    return {os.fsencode(root): i for root, i in zip(roots, root_ids, strict=True)}


def _finish(
    indexer: Indexer, roots: Sequence[Path], root_ids: Sequence[int], scanned_ns: int | None
) -> None:
    """Mark the roots scanned (`scanned_ns`; None: stopped, not marked), unless one was
    forgotten meanwhile: then raise its ScanError, marking none.

    A forget that lands once every file row is written (the tagging, or an unchanged
    rescan) breaks no write, so only this look finds it. The marks come first: their
    write takes the write lock (`store.writelock`), so a forget commits before the look
    sees the roots, or after this scan's last write."""
    index = indexer.index
    with index.batch():
        if scanned_ns is not None:
            for root_id in root_ids:
                index.mark_scanned(root_id, scanned_ns)
        forgotten = forgotten_error(index, _ids(roots, root_ids))
        if forgotten is not None:
            raise forgotten


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
    device: DeviceChoice = device_for,
) -> Counts:
    """`rescan` with an indexer of its own: `progress` follows the reading and tagging,
    and hears when they are over, before the summary. With a `cluster`, decoding and
    inference run on Ray (see `pipeline.fanout`); `device`: see `Indexer`."""
    indexer = Indexer(
        engine, taggers, config, batch, progress, stop=stop, retry_failed=retry_failed,
        cluster=cluster, device=device,
    )  # fmt: skip
    try:
        done = rescan(indexer, roots, allow_empty, wait=True)
        if done.counts.tagged:
            elapsed = time.perf_counter() - done.reading_started
            log.info("%s", indexer.timings.summary(elapsed))
    finally:
        indexer.close()
    return done.counts
