"""`watch`: catch up with the gallery, then tag pictures as they arrive, until stopped.

Start-up runs a scan (everything that changed while dtindex was not running), then a
watchdog observer follows the roots (`gallery.following`): inotify on Linux, the native
observer elsewhere, or a polling observer for network file systems where inotify sees
nothing. Changed files are tagged once they have settled, in batches. A reconciling
rescan runs every `WatchOptions.rescan` seconds and whenever the observer reports an
overflow or dies; each marks the roots scanned, as a scan does. Setting `stop` finishes
the batch in flight and commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from indexer.config import Config
from indexer.gallery.following import Follower, Totals, Unheard, WatchListener, WatchOptions
from indexer.gallery.incremental import Indexer
from indexer.gallery.plan import check_root
from indexer.gallery.watchlock import watch_lock
from indexer.models.runtime import Tagger
from indexer.store.location import Location


class _OverflowAlarm(logging.Handler):
    """watchdog reports a kernel queue overflow only in its log; turn that into a rescan."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.raised = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.raised.set()


def watch(
    engine: Engine,
    location: Location,
    roots: Sequence[Path],
    taggers: Sequence[Tagger],
    config: Config,
    batch: int,
    options: WatchOptions,
    listener: WatchListener | None = None,
    stop: threading.Event | None = None,
) -> Totals:
    """Follow `roots` (absolute paths) until `stop` is set; what was done since start.

    One watch per SQLite index (`gallery.watchlock`): a second raises UsageError."""
    options.check()
    stop = stop or threading.Event()
    alarm = _OverflowAlarm()
    logging.getLogger("watchdog").addHandler(alarm)
    try:
        with watch_lock(location):
            for root in roots:
                check_root(root)
            indexer = Indexer(engine, taggers, config, batch, stop=stop)
            try:
                follower = Follower(indexer, list(roots), options, alarm.raised,
                                    listener or Unheard())  # fmt: skip
                follower.run(stop)
            finally:
                indexer.close()
    finally:
        logging.getLogger("watchdog").removeHandler(alarm)
    return follower.totals
