"""The watch loop: settled paths in batches, reconciling rescans, and an observer kept
listening; what it did, told to a `WatchListener` and kept in `Totals`.

An observer watches the folder it was given, not the path: a root unmounted and mounted
again, or deleted and made anew, leaves it deaf. The roots' (device, inode) are checked
on every turn; when one changes the observer is re-armed and the gallery reconciled. A
kernel queue overflow, which watchdog reports only in its log, and an observer that died
are reconciled too: events may have been lost.

A file that fails to decode while it was written moments ago is put back, not reported:
it may be a download that paused (`gallery.unfinished`), and is looked at again later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from indexer.errors import ScanError, UsageError
from indexer.gallery.events import Collector
from indexer.gallery.forgotten import drop_forgotten
from indexer.gallery.headway import Headway
from indexer.gallery.incremental import Indexer
from indexer.gallery.jobs import Counts
from indexer.gallery.plan import apply_moves, plan_paths
from indexer.gallery.scanning import rescan
from indexer.gallery.unfinished import Unfinished
from indexer.store.under import holds
from indexer.wording import plural

log = logging.getLogger("dtindex")


@dataclass(frozen=True)
class WatchOptions:
    """`settle`: a file is final once unchanged that long (s); `polling`: poll every
    `interval` s instead of inotify (network file systems); `rescan`: reconcile every so
    many seconds; `allow_empty`: a root found empty was emptied, not unmounted."""

    settle: float = 0.5
    polling: bool = False
    interval: float = 2.0
    rescan: float = 3600.0
    allow_empty: bool = False

    def check(self) -> None:
        if self.settle < 0 or self.interval <= 0 or self.rescan <= 0:
            raise UsageError("--settle, --interval and --rescan must be positive")


class Totals:
    """What a watch did since it started.

    Its failures are the files that failed and have not been read again since: a
    download stalled for longer than the grace window (`gallery.unfinished`) fails, and
    leaves the total when it is read whole."""

    def __init__(self) -> None:
        self.counts, self.headway = Counts(), Headway()
        self.failing: set[bytes] = set()
        self.reconciled_ns: int | None = None  # when the last full rescan began
        # The catch-up went through: False when stopped before, so the caller can tell
        # a watch stopped while it caught up (work left undone) from one stopped watching.
        self.caught_up = False
        # Paths heard under its roots but not read when it stopped (not settled yet, or
        # put back; a rename is two): the next scan or watch reads them.
        self.unread = 0

    def add(
        self,
        counts: Counts,
        headway: Headway,
        handled: Iterable[bytes] = (),
        failed: Iterable[bytes] = (),
    ) -> None:
        """Add a run's counts; `handled`: the paths it read or found gone, `failed`
        those of them that failed."""
        self.counts.add(counts)
        for model, results in headway.by_model.items():
            self.headway.by_model[model] = self.headway.by_model.get(model, 0) + results
        self.failing.difference_update(handled)
        self.failing.update(failed)
        self.counts.failed = len(self.failing)


class WatchListener(Protocol):
    """Who follows a watch (the CLI's lines on stderr)."""

    def rescanned(self, why: str, counts: Counts) -> None:
        """A full rescan is over: `caught up`, `reconciled` or `periodic rescan`."""

    def watching(self, roots: Sequence[Path]) -> None:
        """Caught up; the observer follows `roots` from here on."""

    def changed(self, counts: Counts, headway: Headway, totals: Totals) -> None:
        """A settled batch in which some file changed (`counts.failed`: in files)."""


class Unheard:
    def rescanned(self, why: str, counts: Counts) -> None:
        pass

    def watching(self, roots: Sequence[Path]) -> None:
        pass

    def changed(self, counts: Counts, headway: Headway, totals: Totals) -> None:
        pass


def _observer(roots: list[Path], collector: Collector, options: WatchOptions) -> Any:
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    observer = PollingObserver(timeout=options.interval) if options.polling else Observer()
    for root in roots:
        observer.schedule(collector, str(root), recursive=True)
    observer.start()
    return observer


def _identity(root: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(root)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class Follower:
    """Follows `roots` for `indexer` until `stop` is set (`run`)."""

    def __init__(
        self,
        indexer: Indexer,
        roots: list[Path],
        options: WatchOptions,
        lost: threading.Event,
        listener: WatchListener,
    ) -> None:
        self.indexer, self.roots, self.options = indexer, roots, options
        self.lost, self.listener = lost, listener  # `lost`: set on a queue overflow
        self.collector = Collector(indexer.config.scan.extensions, options.settle)
        self.identities = {root: _identity(root) for root in roots}
        self.observer = _observer(roots, self.collector, options)  # before catching up
        self.totals = Totals()
        self.unfinished = Unfinished(options.settle)
        indexer.put_back = self.unfinished.put_back
        index = indexer.index
        self.root_ids = {
            os.fsencode(root): index.root_id(os.fsencode(root), os.stat(root).st_dev)
            for root in roots
        }

    def _rescan(self, why: str, strict: bool = False) -> bool:
        """A full scan; whether it went through (not stopped). After start-up a missing
        root is reported and watching goes on. A root forgotten under it is dropped
        (said) and the others scanned again; a stopped pass is not reported as done."""
        self._forgotten()
        try:
            done = rescan(self.indexer, self.roots, self.options.allow_empty, held=self.root_ids)
        except ScanError as exc:
            if self._forgotten():
                return self._rescan(why, strict)
            if strict:
                raise
            log.error("%s", exc)
            return False
        self.totals.reconciled_ns = done.scanned_ns or self.totals.reconciled_ns
        indexer = self.indexer
        self.totals.add(done.counts, indexer.ledger.headway, done.read, indexer.failed_paths)
        if done.scanned_ns is None:
            return False
        self.listener.rescanned(why, done.counts)
        return True

    def run(self, stop: threading.Event) -> None:
        try:
            if not self._rescan("caught up", strict=True):
                return  # stopped while catching up: `totals.caught_up` stays False
            self.totals.caught_up = True
            self.listener.watching(list(self.roots))
            next_rescan = time.monotonic() + self.options.rescan
            while not stop.is_set():
                self.collector.wakeup.wait(min(self.options.settle, 0.25) or 0.05)
                self.collector.wakeup.clear()
                if self._rearmed() or self._lost_events():
                    self._rescan("reconciled")
                    continue
                self._settled()
                if time.monotonic() >= next_rescan:
                    self._rescan("periodic rescan")
                    next_rescan = time.monotonic() + self.options.rescan
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)
            heard = self.collector.waiting() | self.unfinished.waiting()
            roots = [os.fsencode(root) for root in self.roots]  # those not forgotten
            self.totals.unread = sum(any(holds(r, p) for r in roots) for p in heard)

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
        if not self.lost.is_set() and self.observer.is_alive():
            return False
        self.lost.clear()
        if not self.observer.is_alive():
            log.warning("the file-system observer stopped; restarting it")
            self._restart_observer()
        log.warning("events may have been lost; rescanning")
        return True

    def _forgotten(self) -> bool:
        """Drop the roots forgotten meanwhile; whether any was. Their events are ignored
        from here on; the observer is left running, as a new one would miss what the
        others' folders do while it starts."""
        if not drop_forgotten(self.indexer.index, self.roots, self.root_ids):
            return False
        self.identities = {root: self.identities[root] for root in self.roots}
        return True

    def _restart_observer(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)
        present = [root for root in self.roots if self.identities[root] is not None]
        self.observer = _observer(present, self.collector, self.options)

    def _settled(self) -> None:
        ready = self.collector.ready()
        self.unfinished.heard(ready)
        ready += self.unfinished.due()
        if not ready:
            return
        self._forgotten()
        counts = Counts()
        index, settings = self.indexer.index, self.indexer.config.scan
        plan = plan_paths(index, ready, self.root_ids, settings, counts)
        apply_moves(index, plan, counts)
        moved_or_gone = [row for row, _, _ in plan.moves] + plan.removals
        touched = [row.content_id for row in moved_or_gone if row.content_id is not None]
        self.indexer.process(plan.reads, counts, pending=False, touched=touched)
        headway = self.indexer.ledger.headway
        gone = [path for path in ready if not os.path.lexists(path)]
        handled = [*gone, *(job.path for job in plan.reads)]  # read again, or no more
        self.totals.add(counts, headway, handled, self.indexer.failed_paths)
        counts.failed = len(self.indexer.failed_paths)  # files, not (file, model) pairs
        if not (counts.new or counts.changed or counts.moved or counts.removed):
            # paths gone again before they settled (a folder renamed)
            log.debug("%s settled, no file changed", plural(len(ready), "path"))
            return
        self.listener.changed(counts, headway, self.totals)
