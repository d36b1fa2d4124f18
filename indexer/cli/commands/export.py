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

from indexer.cli.commands.export_streams import stream
from indexer.cli.options import Context
from indexer.cli.rules import add_threshold_arguments, rules_of
from indexer.core.records import Edits
from indexer.errors import UsageError

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
    parser.add_argument(
        "-m", "--model", metavar="NAME", help="model to export (default: the only one indexed)"
    )
    add_threshold_arguments(parser, mcut=True)
    _output_arguments(parser)


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
    parser.add_argument(
        "--beside",
        action="store_true",
        help="files: next to each picture; captions and hydrus files dtindex wrote there "
        "for pictures no longer there (or named otherwise now) go, unless --changed-since",
    )
    parser.add_argument(
        "--replace-existing",
        action="store_true",
        help="captions, hydrus: also replace files dtindex did not write, or wrote as the "
        "other format or to the other place (--out or --beside); it never does unasked",
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
        help="only pictures tagged at or after TIME, or copied, moved or renamed since "
        "(ISO 8601 or Unix seconds)",
    )


def parse_since(text: str | None) -> int | None:
    """Nanoseconds since the epoch; a moment the index cannot hold (`inf`, year 1 in a
    zone east of UTC, past 2262) is a bad value, not a traceback."""
    if not text:
        return None
    try:
        ns = _since_ns(text)
    except OverflowError:
        raise UsageError(f"--changed-since {text!r} is out of range") from None
    except ValueError:
        raise UsageError(f"--changed-since {text!r} is not ISO 8601 or Unix seconds") from None
    if not -(2**63) <= ns < 2**63:  # the index keeps times as signed 64-bit nanoseconds
        raise UsageError(f"--changed-since {text!r} is out of range")
    return ns


def _since_ns(text: str) -> int:
    try:
        return int(float(text) * 1e9)
    except ValueError:
        if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise OverflowError(text) from None
    moment = datetime.fromisoformat(text)
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()
        return int(moment.timestamp() * 1e9)
    except (ValueError, OverflowError):  # the local zone's offset leaves years 1..9999
        raise OverflowError(text) from None


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


def run(args: argparse.Namespace, ctx: Context) -> int:
    refuse_inapplicable(args)
    edits = Edits(args.exclude, args.replace, args.limit)
    since = parse_since(args.changed_since)
    rules = rules_of(args)
    with ctx.index() as index:
        if args.format in SIDECARS:
            written = index.write_files(
                args.format, args.model, rules=rules, edits=edits, since=since,
                out=None if args.beside else args.out, replace_existing=args.replace_existing,
                xmp_prefix=args.xmp_prefix,
            )  # fmt: skip
            return 0 if written.complete else 1
        ident = args.id or "sha1"
        with_paths = ident == "path" or args.format != "tsv"
        found = index.export(args.model, rules=rules, edits=edits, since=since,
                             with_paths=with_paths)  # fmt: skip
        return stream(found, args.format, ident, ctx.stdout)
