"""`dtindex prune`: remove what nothing in the index uses any more.

Scans keep a picture's tags after its last file is gone (it may come back) and keep a
model's old versions (they stay exported until the new one has caught up). Prune drops
the contents no file points to, with their tags and scores, and every model version
that is neither the one the config describes now, nor the newest of its model, nor the
one an export prints for some picture, with its results. What `export` prints does not
change. `--vacuum` then gives the freed space
back to the file system (it rewrites the whole database file).
"""

from __future__ import annotations

import argparse
import json
import logging

from indexer.cli.options import Context
from indexer.wording import plural

log = logging.getLogger("dtindex")
FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vacuum", action="store_true", help="shrink the database file afterwards (VACUUM)"
    )
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.index() as index:
        done = index.prune(vacuum_after=args.vacuum)
    record = {
        "contents": done.contents,
        "model_versions": done.model_versions,
        "scores": done.scores,
    }
    if args.json:
        ctx.stdout.write(json.dumps(record).encode() + b"\n")
        ctx.stdout.flush()
    log.info(
        "pruned %s, %s and %s%s",
        plural(done.contents, "content"),
        plural(done.model_versions, "model version"),
        plural(done.scores, "score"),
        " and vacuumed" if args.vacuum else "",
    )
    return 0
