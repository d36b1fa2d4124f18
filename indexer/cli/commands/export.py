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
import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from itertools import groupby

from indexer.cli.options import Context, require_indexed, threshold_value
from indexer.config import threshold_or_default
from indexer.errors import UsageError
from indexer.export.captions import CaptionNamer, caption_line, write_caption
from indexer.export.thresholds import Scored, Thresholds, select
from indexer.models.taglist import CATEGORY_NAMES
from indexer.store.engine import open_index
from indexer.store.queries import Row, all_paths, paths_by_content, scored

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
    general = args.general if args.general is not None else (entry.general if entry else None)
    character = (
        args.character if args.character is not None else (entry.character if entry else None)
    )
    for value in (general, character):
        if value is not None:
            threshold_value(value, 0)
    return Thresholds(default, general, character, args.mcut)


class Edits:
    """--exclude, --replace and --limit, applied after the thresholds."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.exclude = {t.strip() for item in args.exclude for t in item.split(",") if t.strip()}
        self.replace = {}
        for item in args.replace:
            old, sep, new = item.partition("=")
            if not sep or not old or not new or "\t" in new or "\n" in new:
                raise UsageError(f"--replace {item!r} must be OLD=NEW")
            self.replace[old] = new
        if args.limit is not None and args.limit < 1:
            raise UsageError("--limit must be at least 1")
        self.limit = args.limit

    def apply(self, tags: list[Scored]) -> list[Scored]:
        kept = [
            Scored(self.replace.get(t.tag, t.tag), t.category, t.score)
            for t in tags
            if t.tag not in self.exclude
        ]
        if self.limit is not None and len(kept) > self.limit:
            best = set(sorted(range(len(kept)), key=lambda i: -kept[i].score)[: self.limit])
            kept = [t for i, t in enumerate(kept) if i in best]
        return kept


def pictures(
    rows: Iterator[Row], rules: Thresholds, edits: Edits
) -> Iterator[tuple[int, str, list[Scored]]]:
    for content_id, group in groupby(rows, key=lambda r: r.content_id):
        items = list(group)
        chosen = edits.apply(select([Scored(r.tag, r.category, r.score) for r in items], rules))
        if chosen:
            yield content_id, items[0].sha1, chosen


def run(args: argparse.Namespace, ctx: Context) -> int:
    rules, edits = rules_from(args, ctx), Edits(args)
    since = parse_since(args.changed_since)
    if args.format == "captions" and not (args.out or args.beside):
        raise UsageError("--format captions needs --out DIR or --beside")
    engine = open_index(ctx.database_path(), readonly=True)
    try:
        with engine.connect() as conn:
            require_indexed(conn, args.model)
            floor = (
                0.0
                if any(c is not None for c in (rules.general, rules.character))
                else rules.floor()
            )
            current = ctx.current_version(args.model)
            rows = scored(conn, args.model, current, min(floor, rules.floor()), since)
            items = pictures(rows, rules, edits)
            paths = paths_by_content(conn) if args.id == "path" or args.format != "tsv" else {}
            if args.format == "captions":
                out = os.fsencode(args.out) if args.out else None
                roots = {root for files in paths.values() for _, root in files}
                namer = CaptionNamer(all_paths(conn), out, roots)
                return _captions(items, paths, namer)
            return _stream(items, paths, args, ctx)
    finally:
        engine.dispose()


def _captions(
    items: Iterator[tuple[int, str, list[Scored]]],
    paths: dict[int, list[tuple[bytes, bytes]]],
    namer: CaptionNamer,
) -> int:
    written = 0
    for content_id, _, tags in items:
        line = caption_line(tags)
        for path, root in paths.get(content_id, []):
            write_caption(namer.target(path, root), line)
            written += 1
    log.info("wrote %d caption files", written)
    return 0


def _stream(
    items: Iterator[tuple[int, str, list[Scored]]],
    paths: dict[int, list[tuple[bytes, bytes]]],
    args: argparse.Namespace,
    ctx: Context,
) -> int:
    out, refused = ctx.stdout, 0
    text = io.TextIOWrapper(
        out, encoding="utf-8", errors="surrogateescape", newline="", write_through=True
    )
    writer = csv.writer(text) if args.format == "csv" else None
    if writer:
        writer.writerow([args.id, "tag", "weight", "category"])
    for content_id, sha1, tags in items:
        files = [p for p, _ in paths.get(content_id, [])]
        if args.format == "jsonl":
            out.write(_json_line(sha1, files, tags))
            continue
        ids = [sha1.encode()] if args.id == "sha1" else files
        for ident in ids:
            if writer:
                for t in tags:
                    writer.writerow(
                        [
                            os.fsdecode(ident),
                            t.tag,
                            f"{t.score:.4f}",
                            CATEGORY_NAMES.get(t.category, "") if t.category is not None else "",
                        ]
                    )
                continue
            if b"\t" in ident or b"\n" in ident or b"\r" in ident:
                refused += 1
                log.warning("%r: path holds a tab or line break; not exported", ident)
                continue
            out.write(b"".join(b"%s\t%s\t%.2f\n" % (ident, t.tag.encode(), t.score) for t in tags))
    text.detach()
    out.flush()
    return 1 if refused else 0


def _json_line(sha1: str, paths: list[bytes], tags: list[Scored]) -> bytes:
    record = {
        "sha1": sha1,
        "paths": [os.fsdecode(p) for p in paths],
        "tags": {t.tag: round(t.score, 4) for t in tags},
        "categories": {
            t.tag: CATEGORY_NAMES.get(t.category, str(t.category))
            for t in tags
            if t.category is not None
        },
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n"
