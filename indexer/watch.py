"""`dtindex watch`: catch up with the gallery, then tag pictures as they arrive.

Start-up runs a scan (everything that changed while dtindex was not running), then a
watchdog observer follows the roots: inotify on Linux, the native observer elsewhere, or
with `--polling` a polling observer for network file systems where inotify sees nothing.
Changed files are tagged once they have settled, in batches. A reconciling rescan runs
every `--rescan` seconds and whenever the observer reports an overflow or dies.
SIGINT and SIGTERM finish the batch in flight, commit, and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

from .context import (
    Context,
    add_gallery_arguments,
    add_runtime_arguments,
    batch_size,
    load_models,
    select_roots,
)
from .diff import apply_moves, check_root, plan_paths, plan_scan
from .errors import ScanError, UsageError
from .events import Collector
from .indexing import Indexer
from .jobs import Counts
from .store.database import open_index
from .store.index import Index

log = logging.getLogger("dtindex")
FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gallery_arguments(parser)
    parser.add_argument(
        "--polling",
        action="store_true",
        help="poll the folders instead of using inotify; for network file "
        "systems (NFS, SMB) where inotify sees no changes",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between polls with --polling (default 2)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.5,
        metavar="S",
        help="a file is final once unchanged for S seconds (default 0.5)",
    )
    parser.add_argument(
        "--rescan",
        type=float,
        default=3600.0,
        metavar="S",
        help="reconciling rescan every S seconds (default 3600)",
    )
    add_runtime_arguments(parser)


@contextmanager
def watch_lock(db: Path) -> Iterator[None]:
    """One `watch` per database; `scan` may still run beside it."""
    import fcntl

    path = db.with_name(db.name + ".watch.lock")
    handle: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the daemon's life
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise UsageError(
                f"{db}: another dtindex watch is running on this index ({owner})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


class _OverflowAlarm(logging.Handler):
    """watchdog reports a kernel queue overflow only in its log; turn that into a rescan."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.raised = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.raised.set()


def _observer(roots: list[Path], collector: Collector, args: argparse.Namespace) -> Any:
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    observer = PollingObserver(timeout=args.interval) if args.polling else Observer()
    for root in roots:
        observer.schedule(collector, str(root), recursive=True)
    observer.start()
    return observer


def run(args: argparse.Namespace, ctx: Context) -> int:
    batch = batch_size(args, ctx.config)
    if args.settle < 0 or args.interval <= 0 or args.rescan <= 0:
        raise UsageError("--settle, --interval and --rescan must be positive")
    taggers = load_models(args.model, ctx, args)
    db = ctx.database_path()
    engine = open_index(db)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the batch in flight", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    alarm = _OverflowAlarm()
    logging.getLogger("watchdog").addHandler(alarm)
    try:
        with watch_lock(db):
            with engine.connect() as conn:
                roots = select_roots(args.roots, ctx, Index(conn))
            encoded = [check_root(root) for root in roots]
            indexer = Indexer(engine, taggers, ctx.config, batch, stop=stop, log_batches=True)
            try:
                _follow(indexer, roots, encoded, ctx, args, stop, alarm)
            finally:
                indexer.close()
    finally:
        logging.getLogger("watchdog").removeHandler(alarm)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.dispose()
    log.info("watch stopped")
    return 0


def _rescan(
    indexer: Indexer, roots: list[Path], ctx: Context, why: str, strict: bool = False
) -> None:
    """A full scan; after start-up a missing root is reported and watching goes on."""
    counts = Counts()
    try:
        plan = plan_scan(indexer.index, roots, ctx.config.scan, counts)
    except ScanError as exc:
        if strict:
            raise
        log.error("%s", exc)
        return
    apply_moves(indexer.index, plan, counts)
    indexer.process(plan.reads, counts)
    log.info("%s: %s", why, ", ".join(f"{k} {v}" for k, v in counts.as_dict().items() if v))


def _follow(
    indexer: Indexer,
    roots: list[Path],
    encoded: list[bytes],
    ctx: Context,
    args: argparse.Namespace,
    stop: threading.Event,
    alarm: _OverflowAlarm,
) -> None:
    collector = Collector(ctx.config.scan.extensions, args.settle)
    observer = _observer(roots, collector, args)  # before catching up: nothing slips between
    root_ids = {path: indexer.index.root_id(path, os.stat(path).st_dev) for path in encoded}
    try:
        _rescan(indexer, roots, ctx, "caught up", strict=True)
        log.info("watching %s", ", ".join(str(r) for r in roots))
        next_rescan = time.monotonic() + args.rescan
        while not stop.is_set():
            collector.wakeup.wait(min(args.settle, 0.25) or 0.05)
            collector.wakeup.clear()
            if alarm.raised.is_set() or not observer.is_alive():
                alarm.raised.clear()
                if not observer.is_alive():
                    log.warning("the file-system observer stopped; restarting it")
                    observer = _observer(roots, collector, args)
                _rescan(indexer, roots, ctx, "events may have been lost; rescanned")
                continue
            ready = collector.ready()
            if ready:
                counts = Counts()
                plan = plan_paths(indexer.index, ready, root_ids, ctx.config.scan, counts)
                apply_moves(indexer.index, plan, counts)
                indexer.process(plan.reads, counts, pending=False)
                if counts.moved or counts.removed:
                    log.info("moved %d, removed %d", counts.moved, counts.removed)
            if time.monotonic() >= next_rescan:
                _rescan(indexer, roots, ctx, "periodic rescan")
                next_rescan = time.monotonic() + args.rescan
    finally:
        observer.stop()
        observer.join(timeout=5)
