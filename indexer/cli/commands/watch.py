"""`dtindex watch`: catch up with the gallery, then tag pictures as they arrive.

Start-up runs a scan (everything that changed while dtindex was not running), then a
watchdog observer follows the roots: inotify on Linux, the native observer elsewhere, or
with `--polling` a polling observer for network file systems where inotify sees nothing.
Changed files are tagged once they have settled, in batches, each reported in one line
in files (one `mv` is one file moved) with the totals since start; a batch in which no
file changed says nothing. A reconciling rescan runs every `--rescan` seconds and
whenever the observer reports an overflow or dies.
SIGINT and SIGTERM finish the batch in flight, commit, and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from indexer.cli.options import (
    Context,
    add_gallery_arguments,
    add_runtime_arguments,
    batch_size,
    load_models,
    select_roots,
)
from indexer.cli.progress import Totals, changes, tally
from indexer.cli.stopping import stop_on_signals
from indexer.errors import ScanError, UsageError
from indexer.gallery.events import Collector
from indexer.gallery.forgotten import drop_forgotten
from indexer.gallery.incremental import Indexer
from indexer.gallery.jobs import Counts
from indexer.gallery.plan import apply_moves, check_root, plan_paths, plan_scan
from indexer.gallery.watchlock import watch_lock
from indexer.store.engine import open_index
from indexer.store.records import Records
from indexer.wording import plural

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
        "--allow-empty",
        action="store_true",
        help="a root found empty while the index holds files under it was emptied, not "
        "unmounted: forget its files (as scan --allow-empty)",
    )
    parser.add_argument(
        "--rescan",
        type=float,
        default=3600.0,
        metavar="S",
        help="reconciling rescan every S seconds (default 3600)",
    )
    add_runtime_arguments(parser)


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
    db = ctx.database()
    engine = open_index(db)
    stop = threading.Event()
    alarm = _OverflowAlarm()
    logging.getLogger("watchdog").addHandler(alarm)
    try:
        with watch_lock(db), stop_on_signals(stop):
            with engine.connect() as conn:
                roots = select_roots(args.roots, ctx, Records(conn))
            for root in roots:
                check_root(root)
            indexer = Indexer(engine, taggers, ctx.config, batch, stop=stop)
            follower = _Follower(indexer, roots, ctx, args, alarm)
            try:
                follower.run(stop)
            finally:
                indexer.close()
    finally:
        logging.getLogger("watchdog").removeHandler(alarm)
        engine.dispose()
    log.info("watch stopped; since start: %s", follower.totals)
    return 0


def _rescan(
    indexer: Indexer,
    roots: list[Path],
    args: argparse.Namespace,
    ctx: Context,
    why: str,
    strict: bool = False,
) -> tuple[Counts, list[bytes]]:
    """A full scan, and the paths it read; after start-up a missing root is reported and
    watching goes on."""
    counts = Counts()
    try:
        plan = plan_scan(indexer.index, roots, ctx.config.scan, counts, args.allow_empty)
    except ScanError as exc:
        if strict:
            raise
        log.error("%s", exc)
        return counts, []
    apply_moves(indexer.index, plan, counts)
    indexer.process(plan.reads, counts)
    log.info("%s: %s", why, ", ".join(f"{k} {v}" for k, v in counts.as_dict().items() if v))
    return counts, [job.path for job in plan.reads]


def _identity(root: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(root)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class _Follower:
    """The watch loop: settled paths in batches, rescans, and an observer kept listening.

    An observer watches the folder it was given, not the path: a root unmounted and
    mounted again, or deleted and made anew, leaves it deaf. The roots' (device, inode)
    are checked on every turn; when one changes the observer is re-armed and the gallery
    reconciled.
    """

    def __init__(
        self,
        indexer: Indexer,
        roots: list[Path],
        ctx: Context,
        args: argparse.Namespace,
        alarm: _OverflowAlarm,
    ) -> None:
        self.indexer, self.roots, self.ctx, self.args, self.alarm = indexer, roots, ctx, args, alarm
        self.collector = Collector(ctx.config.scan.extensions, args.settle)
        self.identities = {root: _identity(root) for root in roots}
        self.observer = _observer(roots, self.collector, args)  # before catching up
        self.totals = Totals()
        index = indexer.index
        self.root_ids = {
            os.fsencode(root): index.root_id(os.fsencode(root), os.stat(root).st_dev)
            for root in roots
        }

    def _rescan(self, why: str, strict: bool = False) -> None:
        self._forgotten()
        counts, read = _rescan(self.indexer, self.roots, self.args, self.ctx, why, strict)
        self.totals.add(counts, self.indexer.ledger.headway, read, self.indexer.failed_paths)

    def run(self, stop: threading.Event) -> None:
        try:
            self._rescan("caught up", strict=True)
            log.info("watching %s", ", ".join(str(r) for r in self.roots))
            next_rescan = time.monotonic() + self.args.rescan
            while not stop.is_set():
                self.collector.wakeup.wait(min(self.args.settle, 0.25) or 0.05)
                self.collector.wakeup.clear()
                if self._rearmed() or self._lost_events():
                    self._rescan("reconciled")
                    continue
                self._settled()
                if time.monotonic() >= next_rescan:
                    self._rescan("periodic rescan")
                    next_rescan = time.monotonic() + self.args.rescan
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)

    def _rearmed(self) -> bool:
        changed = False
        for root, known in self.identities.items():
            now = _identity(root)
            if now == known:
                continue
            self.identities[root] = now
            if now is None:
                log.warning("%s: root is gone (unmounted?); waiting for it to return", root)
                continue
            log.warning("%s: root was mounted again or made anew; watching it again", root)
            changed = True
        if changed:
            self._restart_observer()
        return changed

    def _lost_events(self) -> bool:
        if not self.alarm.raised.is_set() and self.observer.is_alive():
            return False
        self.alarm.raised.clear()
        if not self.observer.is_alive():
            log.warning("the file-system observer stopped; restarting it")
            self._restart_observer()
        log.warning("events may have been lost; rescanning")
        return True

    def _forgotten(self) -> None:
        """Its events are ignored from here on; the observer is left running, as a new
        one would miss what the others' folders do while it starts."""
        if drop_forgotten(self.indexer.index, self.roots, self.root_ids):
            self.identities = {root: self.identities[root] for root in self.roots}

    def _restart_observer(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)
        present = [root for root in self.roots if self.identities[root] is not None]
        self.observer = _observer(present, self.collector, self.args)

    def _settled(self) -> None:
        ready = self.collector.ready()
        if not ready:
            return
        self._forgotten()
        counts = Counts()
        settings = self.ctx.config.scan
        plan = plan_paths(self.indexer.index, ready, self.root_ids, settings, counts)
        apply_moves(self.indexer.index, plan, counts)
        self.indexer.process(plan.reads, counts, pending=False)
        headway = self.indexer.ledger.headway
        gone = [path for path in ready if not os.path.lexists(path)]
        handled = [*gone, *(job.path for job in plan.reads)]  # read again, or no more
        self.totals.add(counts, headway, handled, self.indexer.failed_paths)
        counts.failed = len(self.indexer.failed_paths)  # files, not (file, model) pairs
        happened = changes(counts)
        if not happened:  # paths gone again before they settled (a folder renamed)
            log.debug("%s settled, no file changed", plural(len(ready), "path"))
            return
        if counts.tagged or counts.failed:  # not for moves, nor files gone again since
            happened += f": {tally(counts, headway)}"
        log.info("%s; since start: %s", happened, self.totals)
