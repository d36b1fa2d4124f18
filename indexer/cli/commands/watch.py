"""`dtindex watch`: catch up with the gallery, then tag pictures as they arrive.

Start-up runs a scan (everything that changed while dtindex was not running), then a
watchdog observer follows the roots: inotify on Linux, the native observer elsewhere, or
with `--polling` a polling observer for network file systems where inotify sees nothing.
Changed files are tagged once they have settled, in batches, each reported in one line
in files (one `mv` is one file moved) with the totals since start; a batch in which no
file changed says nothing. A reconciling rescan runs every `--rescan` seconds and
whenever the observer reports an overflow or dies; `dtindex status` shows when the last
one began as the roots' scan time.
SIGINT and SIGTERM finish the batch in flight, commit, and exit 0 once the watch has
caught up; one that lands while it catches up ends it as a stopped scan ends (128+N, a
rerun resumes): the gallery was not caught up with.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from indexer.cli.options import Context, add_gallery_arguments, add_runtime_arguments
from indexer.cli.progress import changes, tally
from indexer.cli.stopping import stop_on_signals
from indexer.core.records import Counts, Headway, Totals, WatchOptions
from indexer.errors import Interrupted
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


class _Lines:
    """The watch's lines on stderr (a `WatchListener`)."""

    def rescanned(self, why: str, counts: Counts) -> None:
        log.info("%s: %s", why, ", ".join(f"{k} {v}" for k, v in counts.as_dict().items() if v))

    def watching(self, roots: Sequence[Path]) -> None:
        log.info("watching %s", ", ".join(str(r) for r in roots))

    def changed(self, counts: Counts, headway: Headway, totals: Totals) -> None:
        happened = changes(counts)
        if counts.tagged or counts.failed:  # not for moves, nor files gone again since
            happened += f": {tally(counts, headway)}"
        log.info("%s; since start: %s", happened, tally(totals.counts, totals.headway))


def run(args: argparse.Namespace, ctx: Context) -> int:
    options = WatchOptions(args.settle, args.polling, args.interval, args.rescan, args.allow_empty)
    options.check()  # before the models load
    stop = threading.Event()
    with ctx.index(args) as index:
        taggers = index.taggers(args.model)  # a Ctrl-C while they load: interrupted
        with stop_on_signals(stop) as received:
            totals = index.watch(
                args.roots, models=taggers, batch=args.batch, options=options,
                listener=_Lines(), stop=stop,
            )  # fmt: skip
    if received and not totals.caught_up:
        raise Interrupted(received[0])
    log.info("watch stopped; since start: %s", tally(totals.counts, totals.headway))
    if totals.unread:
        log.info(
            "%s heard in its last moments not read yet: the next scan or watch reads them",
            plural(totals.unread, "change"),
        )
    return 0
