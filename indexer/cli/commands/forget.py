"""`dtindex forget ROOT...`: drop gallery folders, and their files, from the index.

A plain `dtindex scan` rescans every indexed root and stops when one is missing, since
a missing folder may be an unmounted disk; forget the ones that were really deleted or
moved away. A ROOT need not exist any more; it is named as it was scanned (relative
paths and `..` are resolved against the current folder). A file that also lies inside
another indexed root (nested roots) stays, under the innermost such root. A ROOT that
is not indexed is an error and nothing is removed.

Tags of pictures no longer present stay in the index until `dtindex prune`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from indexer.cli.options import Context
from indexer.wording import plural

log = logging.getLogger("dtindex")
FAILURE = 1
LISTS = ("removed_roots", "removed_files", "reassigned_files")  # --json's path lists


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("roots", nargs="+", metavar="ROOT", help="indexed gallery folder")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the removed roots and files, and the files moved to another root, as JSON "
        f"({', '.join(LISTS)}; roots, files, reassigned: how many)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.index() as index:
        done = index.forget(args.roots)
    if args.json:
        record: dict[str, object] = {
            "roots": done.roots,
            "files": done.files,
            "reassigned": done.reassigned,
        }
        lists = zip(LISTS, (done.root_paths, done.file_paths, done.reassigned_paths), strict=True)
        record |= {key: [os.fsdecode(p) for p in paths] for key, paths in lists}
        ctx.stdout.write(json.dumps(record).encode() + b"\n")
        ctx.stdout.flush()
    log.info(
        "forgot %s and %s (%d kept, now under another root); "
        "`dtindex prune` drops the tags nothing uses now",
        plural(done.roots, "root"),
        plural(done.files, "file"),
        done.reassigned,
    )
    return 0
