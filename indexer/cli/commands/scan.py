"""`dtindex scan`: bring the index up to date with the gallery and tag what is missing.

A gallery that did not change is walked and stat'ed, nothing is read and no model runs.
New and changed pictures are read once (hashed and decoded from the same bytes); each
distinct content is tagged once per model version, however many names it has. Pictures
that cannot be decoded are recorded with the reason and not retried until they change.

Exit status: 0 when the index is complete (pictures that cannot be decoded are recorded
and count as done); 1 when it is not: a database or model error, a missing or unmounted
root (nothing is then removed), or pictures that failed for reasons a later scan retries
(a crash, a timeout, permissions, I/O, the model) or were saved again while read; 128+N
when stopped by signal N (SIGINT, SIGTERM: the batch in flight is finished first, a rerun
resumes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading

from indexer.cli.options import Context, add_gallery_arguments, add_runtime_arguments, batch_size
from indexer.cli.progress import Progress
from indexer.cli.stopping import stop_on_signals
from indexer.errors import Incomplete, Interrupted, UsageError
from indexer.wording import plural

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
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="decode and tag on the Ray cluster at ADDRESS (`local`: start one here); "
        "every node needs the gallery at the same path, unless --ship-files (needs dtindex[ray])",
    )
    parser.add_argument(
        "--ship-files",
        action="store_true",
        help="with --ray: this machine reads the pictures and sends their bytes to the "
        "workers, for nodes that do not see the gallery (a shared mount is faster)",
    )
    add_runtime_arguments(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.ship_files and not args.ray:
        raise UsageError("--ship-files goes with --ray")
    with ctx.index(args) as index, contextlib.ExitStack() as held:
        batch = batch_size(args, ctx.config)
        taggers = index.taggers(args.model)
        cluster = None
        if args.ray:
            # Ray's driver prints its cluster's news ("a worker died ...") to sys.stdout,
            # which carries our data (`ctx.stdout`, taken before): send it to stderr.
            held.enter_context(contextlib.redirect_stdout(sys.stderr))
            cluster = index.cluster(args.ray, ship=args.ship_files)
            held.callback(cluster.close)  # should anything fail before the scan
        stop = threading.Event()
        shown = ctx.stderr_is_tty and not args.quiet
        # `ray.init` installed Ray's own SIGTERM handler (exit 1), back once the stop
        # handlers are left: the cluster shuts down before (`winding`), so a stop that
        # lands while it winds down is still a stop (128+N).
        with (
            Progress(shown) as progress,
            stop_on_signals(stop) as received,
            contextlib.ExitStack() as winding,
        ):
            if cluster is not None:
                winding.callback(cluster.close)
            counts = index.scan(
                args.roots, models=taggers, batch=batch, progress=progress, stop=stop,
                allow_empty=args.allow_empty, retry_failed=args.retry_failed, cluster=cluster,
            )  # fmt: skip
    if received:
        raise Interrupted(received[0])
    if args.json:
        ctx.stdout.write(json.dumps(counts.as_dict()).encode() + b"\n")
        ctx.stdout.flush()
    summary = ", ".join(f"{k} {v}" for k, v in counts.as_dict().items() if v or k == "files")
    log.info("scan done: %s", summary)
    if counts.to_retry:
        raise Incomplete(
            f"the index is incomplete: {plural(counts.to_retry, 'picture')} left for the next "
            "scan (failures it retries, which dtindex status lists, or files saved while read)"
        )
    return 0
