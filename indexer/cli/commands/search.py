"""`dtindex search`: files whose stored tags match a query.

    dtindex search "1girl blue_hair -solo rating:general" --model wd14

Terms are ANDed (`--any` ORs the wanted ones); `-tag` excludes; `rating:X` is the rating
tag X. A picture has a tag where the export gives it that tag: the model's thresholds
per category (its `threshold`, else 0.1, for the others), and its best rating; the
threshold options ask for others, as they do the export's. A query that starts with `-`
goes after `--`: `dtindex search -- "-solo"`.

The paths are printed one per line, as the file system names them (bytes, not
necessarily UTF-8); a name holding a line break would read as two, so `-0` ends each
with a NUL instead, for `xargs -0` (as `find -print0` does).
"""

from __future__ import annotations

import argparse

from indexer.cli.options import Context
from indexer.cli.rules import add_threshold_arguments, rules_of

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY", help='tags, e.g. "1girl blue_hair -solo"')
    parser.add_argument(
        "-m",
        "--model",
        metavar="NAME",
        help="model whose tags to search (default: the only one indexed)",
    )
    parser.add_argument("--any", action="store_true", help="match any wanted tag, not all")
    parser.add_argument(
        "-0",
        "--null",
        action="store_true",
        help="end each path with a NUL, not a line break (for xargs -0)",
    )
    add_threshold_arguments(parser, mcut=False)


def run(args: argparse.Namespace, ctx: Context) -> int:
    rules = rules_of(args)
    with ctx.index() as index:
        paths = index.search(args.query, args.model, args.any, rules)
    end = b"\0" if args.null else b"\n"
    ctx.stdout.write(b"".join(p + end for p in paths))
    ctx.stdout.flush()
    return 0
