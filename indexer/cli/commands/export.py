"""`dtindex export`: stored tags for other programs, thresholds applied now.

The default output feeds `gallery tag GD SPACE [DESCRIPTION]`, which rejects the whole
import on any line without exactly three fields: `sha1<TAB>tag<TAB>weight`, nothing else.
`--id path` prints file paths instead (a path holding a tab or line break is refused).
`--format captions` writes one `.txt` per picture (`--beside` it, or under `--out DIR`).
Thresholds: `-t`, per category `--general`/`--character` (lists with categories), or
`--mcut`; a list with ratings exports the single best rating tag.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from datetime import datetime

from indexer.cli.commands.export_streams import stream
from indexer.cli.options import Context, threshold_value
from indexer.config import threshold_or_default
from indexer.errors import UsageError
from indexer.export.captions import SUFFIX, caption_file
from indexer.export.selection import Edits, Picture, pictures
from indexer.export.sidecars import SidecarNamer, replace_file
from indexer.export.thresholds import Thresholds
from indexer.store.engine import open_index
from indexer.store.queries import all_paths, model_known, paths_by_content, scored

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
    parser.add_argument("--general", type=float, metavar="T", help="threshold for general tags")
    parser.add_argument("--character", type=float, metavar="T", help="threshold for characters")
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="NAME=T",
        help="threshold for any category the tag list names (artist=0.5, year=0.4; repeatable)",
    )
    parser.add_argument(
        "--tag-thresholds",
        action="store_true",
        help="use each tag's own threshold where the model's authors published one",
    )
    parser.add_argument(
        "--mcut",
        action="store_true",
        help="automatic threshold per category at the largest score gap",
    )
    parser.add_argument(
        "--id",
        choices=("sha1", "path"),
        default="sha1",
        help="identify pictures by SHA-1 (default, for gallery) or by file path",
    )
    parser.add_argument(
        "--format",
        choices=("tsv", "jsonl", "csv", "captions"),
        default="tsv",
        help="tsv: id<TAB>tag<TAB>weight; jsonl: an object per picture; "
        "csv: with a header; captions: .txt files",
    )
    parser.add_argument("--out", metavar="DIR", help="captions: mirror the roots under DIR")
    parser.add_argument("--beside", action="store_true", help="captions: next to each picture")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="TAG",
        help="leave out a tag (repeatable, or comma-separated)",
    )
    parser.add_argument(
        "--replace",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a tag in the output (repeatable)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N tags per picture")
    parser.add_argument(
        "--changed-since",
        metavar="TIME",
        help="only pictures tagged at or after TIME (ISO 8601 or Unix seconds)",
    )


def parse_since(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--changed-since {text!r} is not ISO 8601 or Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1e9)


def rules_from(args: argparse.Namespace, ctx: Context) -> Thresholds:
    entry = ctx.config.models.get(args.model)
    default = threshold_value(
        args.threshold, threshold_or_default(entry.threshold if entry else None)
    )
    categories = entry.category_thresholds() if entry else {}
    asked = {"general": args.general, "character": args.character}
    for item in args.category:
        name, _, value = item.partition("=")
        try:
            asked[name.strip().lower()] = float(value)
        except ValueError:
            raise UsageError(
                f"--category {item!r} must be NAME=T (a category, a threshold)"
            ) from None
    for name, value in asked.items():
        if value is not None:
            categories[name] = threshold_value(value, 0)
    return Thresholds(default, tuple(categories.items()), args.mcut, args.tag_thresholds)


def run(args: argparse.Namespace, ctx: Context) -> int:
    rules = rules_from(args, ctx)
    edits = Edits(args.exclude, args.replace, args.limit)
    since = parse_since(args.changed_since)
    if args.format == "captions" and not (args.out or args.beside):
        raise UsageError("--format captions needs --out DIR or --beside")
    engine = open_index(ctx.database_path(), readonly=True)
    try:
        with engine.connect() as conn:
            if not model_known(conn, args.model):
                raise UsageError(f"model {args.model!r} has tagged nothing in this index yet")
            current = ctx.current_version(args.model)
            rows = scored(conn, args.model, current, rules.floor(), since)
            items = pictures(rows, rules, edits)
            paths = paths_by_content(conn) if args.id == "path" or args.format != "tsv" else {}
            if args.format == "captions":
                out = os.fsencode(args.out) if args.out else None
                roots = {root for files in paths.values() for _, root in files}
                namer = SidecarNamer(out, roots, SUFFIX, all_paths(conn))
                return _captions(items, paths, namer)
            return stream(items, paths, args.format, args.id, ctx.stdout)
    finally:
        engine.dispose()


def _captions(
    items: Iterator[Picture],
    paths: dict[int, list[tuple[bytes, bytes]]],
    namer: SidecarNamer,
) -> int:
    written = 0
    for content_id, _, tags in items:
        data = caption_file(tags)
        for path, root in paths.get(content_id, []):
            written += replace_file(namer.target(path, root), data)
    log.info("wrote %d caption files", written)
    return 0
