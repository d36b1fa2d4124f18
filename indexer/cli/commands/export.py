"""`dtindex export`: stored tags for other programs, thresholds applied now.

The default output feeds `gallery tag GD SPACE [DESCRIPTION]`, which rejects the whole
import on any line without exactly three fields: `sha1<TAB>tag<TAB>weight`, nothing else.
`--id path` prints file paths instead (a path holding a tab or line break is refused).
`--format csv` and `--format jsonl` print a row or an object per picture.

Files beside each picture (`--beside`) or under `--out DIR`, mirroring its path below its
root: `--format captions` (`a.txt`, tags by descending score), `--format xmp` (the tags
merged into `a.png.xmp`, where digiKam, darktable, Lightroom and Immich read keywords;
`--xmp-prefix dtindex/wd3` files them under a hierarchy), `--format hydrus` (`a.png.txt`,
one namespaced tag per line). A file that cannot be written is named and skipped, and
the export exits 1.

Thresholds: `-t`, per category `--general`/`--character`/`--category NAME=T` (lists with
categories), the authors' per-tag thresholds (`--tag-thresholds`), or `--mcut`; a list
with ratings exports the single best rating tag (`thresholds.select` says why `-t` leaves
it in), which files name as a rating (`rating:general`, XMP's `rating/general`). An
option that does not apply to the chosen format or model is refused.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from indexer.cli.commands.export_sidecars import kind_of, namer, write_sidecars
from indexer.cli.commands.export_streams import stream
from indexer.cli.options import Context, require_indexed, threshold_value
from indexer.config import threshold_or_default
from indexer.errors import UsageError
from indexer.export.ownership import Ownership
from indexer.export.selection import Edits, pictures
from indexer.export.thresholds import Thresholds
from indexer.export.xmp import hierarchy
from indexer.store.engine import open_index
from indexer.store.queries import (
    all_paths,
    categories,
    paths_by_content,
    scored,
    tagged_contents,
)

FAILURE = 1

STREAMS = ("tsv", "jsonl", "csv")  # on stdout
SIDECARS = ("captions", "xmp", "hydrus")  # a file per picture

# The formats each option applies to (by its argparse dest); any other is refused.
APPLIES = {
    "id": ("--id", ("tsv", "csv")),
    "out": ("--out", SIDECARS),
    "beside": ("--beside", SIDECARS),
    "xmp_prefix": ("--xmp-prefix", ("xmp",)),
    "replace_existing": ("--replace-existing", ("captions", "hydrus")),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, metavar="NAME", help="model to export")
    _threshold_arguments(parser.add_argument_group("thresholds"))
    _output_arguments(parser)


def _threshold_arguments(parser: argparse._ArgumentGroup) -> None:
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


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--id",
        choices=("sha1", "path"),
        help="tsv, csv: identify pictures by SHA-1 (default, for gallery) or by file path",
    )
    parser.add_argument(
        "--format",
        choices=(*STREAMS, *SIDECARS),
        default="tsv",
        help="tsv: id<TAB>tag<TAB>weight; jsonl: an object per picture; csv: with a header; "
        "captions: a .txt per picture; xmp: tags merged into FILE.EXT.xmp; "
        "hydrus: FILE.EXT.txt with namespaced tags",
    )
    parser.add_argument("--out", metavar="DIR", help="files: mirror the roots under DIR")
    parser.add_argument("--beside", action="store_true", help="files: next to each picture")
    parser.add_argument(
        "--replace-existing",
        action="store_true",
        help="captions, hydrus: also replace files dtindex did not write (it never does unasked)",
    )
    parser.add_argument(
        "--xmp-prefix",
        metavar="A/B",
        help="xmp: file the tags under A/B in the hierarchical fields (dc:subject stays flat)",
    )
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


def asked_categories(args: argparse.Namespace) -> dict[str, float]:
    """Category thresholds named on the command line: `--general`, `--character` and
    `--category NAME=T`, by category name."""
    asked = {"general": args.general, "character": args.character}
    for item in args.category:
        name, _, value = item.partition("=")
        try:
            asked[name.strip().lower()] = float(value)
        except ValueError:
            raise UsageError(
                f"--category {item!r} must be NAME=T (a category, a threshold)"
            ) from None
    return {name: threshold_value(value, 0) for name, value in asked.items() if value is not None}


def rules_from(args: argparse.Namespace, ctx: Context) -> Thresholds:
    entry = ctx.config.models.get(args.model)
    default = threshold_value(
        args.threshold, threshold_or_default(entry.threshold if entry else None)
    )
    categories = entry.category_thresholds() if entry else {}
    categories.update(asked_categories(args))
    return Thresholds(default, tuple(categories.items()), args.mcut, args.tag_thresholds)


def refuse_inapplicable(args: argparse.Namespace) -> None:
    """An option the format would ignore is a mistake worth hearing about."""
    if args.out and args.beside:
        raise UsageError("--out DIR and --beside exclude each other: the files go one place")
    for dest, (option, formats) in APPLIES.items():
        if getattr(args, dest) not in (None, False) and args.format not in formats:
            allowed = " or ".join(formats)
            raise UsageError(f"{option} applies to --format {allowed}, not {args.format}")
    if args.format in SIDECARS and not (args.out or args.beside):
        raise UsageError(f"--format {args.format} needs --out DIR or --beside")


def refuse_categories(args: argparse.Namespace, present: set[str]) -> None:
    """A category threshold for a category the model's tag list lacks would do nothing
    (`--general` on a plain list, `--category year=0.5` on WD's)."""
    for name in asked_categories(args):
        if name in present:
            continue
        plain = name in ("general", "character") and getattr(args, name) is not None
        option = f"--{name}" if plain else f"--category {name}"
        what = "no categories" if not present else f"no {name} tags ({', '.join(sorted(present))})"
        raise UsageError(
            f"{option} applies to tag lists with categories; model {args.model!r} has {what}"
        )


def run(args: argparse.Namespace, ctx: Context) -> int:
    refuse_inapplicable(args)
    rules = rules_from(args, ctx)
    edits = Edits(args.exclude, args.replace, args.limit)
    since = parse_since(args.changed_since)
    levels = hierarchy(args.xmp_prefix)
    engine = open_index(ctx.database(), readonly=True)
    try:
        with engine.connect() as conn:
            require_indexed(conn, args.model)
            refuse_categories(args, categories(conn, args.model))
            current = ctx.current_version(args.model)
            rows = scored(conn, args.model, current, rules.floor(), since)
            items = pictures(rows, rules, edits)
            ident = args.id or "sha1"
            paths = paths_by_content(conn) if ident == "path" or args.format != "tsv" else {}
            if args.format in SIDECARS:
                kind = kind_of(args.format, args.model, levels)
                where = namer(kind, args.out, paths, lambda: all_paths(conn))
                tagged = tagged_contents(conn, args.model, current, since)
                owner = Ownership(args.replace_existing)
                return write_sidecars(kind, items, tagged, paths, where, owner)
            return stream(items, paths, args.format, ident, ctx.stdout)
    finally:
        engine.dispose()
