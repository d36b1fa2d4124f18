"""`dtindex export`: stored tags for other programs, thresholds applied now.

The default output feeds `gallery tag GD SPACE [DESCRIPTION]`, which rejects the whole
import on any line without exactly three fields: `sha1<TAB>tag<TAB>weight`, nothing else.
`--id path` prints file paths instead (a path holding a tab or line break is refused).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator
from itertools import groupby

from .config import DEFAULT_THRESHOLD
from .context import Context, threshold_value
from .errors import UsageError
from .store.database import open_index
from .store.queries import Scored, model_known, paths_by_content, scored
from .taglist import CATEGORY_NAMES

log = logging.getLogger("dtindex")
FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, metavar="NAME", help="model to export")
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        metavar="T",
        help="weights above T (default: the model's threshold, else 0.1)",
    )
    parser.add_argument(
        "--id",
        choices=("sha1", "path"),
        default="sha1",
        help="identify pictures by SHA-1 (default, for gallery) or by file path",
    )
    parser.add_argument(
        "--format",
        choices=("tsv", "jsonl"),
        default="tsv",
        help="tsv: id<TAB>tag<TAB>weight lines; jsonl: one object per picture",
    )


def _by_content(rows: Iterator[Scored]) -> Iterator[tuple[int, list[Scored]]]:
    for content_id, group in groupby(rows, key=lambda r: r.content_id):
        yield content_id, list(group)


def run(args: argparse.Namespace, ctx: Context) -> int:
    entry = ctx.config.models.get(args.model)
    threshold = threshold_value(
        args.threshold, (entry.threshold if entry else None) or DEFAULT_THRESHOLD
    )
    engine = open_index(ctx.database_path(), readonly=True)
    refused = 0
    try:
        with engine.connect() as conn:
            if not model_known(conn, args.model):
                raise UsageError(f"model {args.model!r} has tagged nothing in this index yet")
            paths = paths_by_content(conn) if args.id == "path" or args.format == "jsonl" else {}
            out = ctx.stdout
            for content_id, group in _by_content(scored(conn, args.model, threshold)):
                if args.format == "jsonl":
                    out.write(_json_line(group, paths.get(content_id, [])))
                    continue
                ids = [group[0].sha1.encode()] if args.id == "sha1" else paths.get(content_id, [])
                for ident in ids:
                    if b"\t" in ident or b"\n" in ident or b"\r" in ident:
                        refused += 1
                        log.warning("%r: path holds a tab or line break; not exported", ident)
                        continue
                    out.write(
                        b"".join(
                            b"%s\t%s\t%.2f\n" % (ident, r.tag.encode(), r.score) for r in group
                        )
                    )
            out.flush()
    finally:
        engine.dispose()
    return 1 if refused else 0


def _json_line(group: list[Scored], paths: list[bytes]) -> bytes:
    record = {
        "sha1": group[0].sha1,
        "paths": [os.fsdecode(p) for p in paths],
        "tags": {r.tag: round(r.score, 4) for r in group},
        "categories": {
            r.tag: CATEGORY_NAMES.get(r.category, str(r.category))
            for r in group
            if r.category is not None
        },
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n"
