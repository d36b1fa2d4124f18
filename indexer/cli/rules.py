"""The options asking `export` and `search` for other thresholds than the model's table
(`-t`, `--general`, `--character`, `--category NAME=T`, `--tag-thresholds`, `--mcut`),
read in this one place into a `core.Rules`; the core applies them
(`core.choosing.thresholds`)."""

from __future__ import annotations

import argparse

from indexer.core.records import Rules
from indexer.errors import UsageError


def add_threshold_arguments(parser: argparse.ArgumentParser, *, mcut: bool) -> None:
    """The threshold options; `mcut`: also `--mcut`, a rule per picture's scores, which
    only the export can apply."""
    group = parser.add_argument_group("thresholds (default: the model's table)")
    group.add_argument(
        "-t",
        "--threshold",
        type=float,
        metavar="T",
        help="scores above T (default: the model's threshold, else 0.1) for tags whose "
        "category has no threshold of its own",
    )
    group.add_argument("--general", type=float, metavar="T", help="threshold for general tags")
    group.add_argument("--character", type=float, metavar="T", help="threshold for characters")
    group.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="NAME=T",
        help="threshold for any category the tag list names (artist=0.5, year=0.4; repeatable)",
    )
    group.add_argument(
        "--tag-thresholds",
        action="store_true",
        help="use each tag's own threshold where the model's authors published one",
    )
    if mcut:
        group.add_argument(
            "--mcut",
            action="store_true",
            help="automatic threshold per category at the largest score gap",
        )


def rules_of(args: argparse.Namespace) -> Rules:
    """The thresholds the options ask for instead of the model table's (`core.Rules`),
    each category threshold spelled as it was asked for, for messages."""
    asked: dict[str, float] = {}
    spelled: dict[str, str] = {}
    for name in ("general", "character"):
        if getattr(args, name) is not None:
            asked[name], spelled[name] = getattr(args, name), f"--{name}"
    for item in args.category:
        name, _, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            raise UsageError(
                f"--category {item!r} must be NAME=T (a category, a threshold)"
            ) from None
        key = name.strip().lower()
        asked[key] = number
        spelled.setdefault(key, f"--category {key}")
    return Rules(
        threshold=args.threshold,
        categories=asked,
        tag_thresholds=args.tag_thresholds,
        mcut=bool(getattr(args, "mcut", False)),
        spelled=spelled,
    )
