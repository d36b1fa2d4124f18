"""Which pictures have a tag, as `export` and `search` both decide it: the model's
thresholds from its table, and the options that ask for others (`-t`, `--general`,
`--character`, `--category NAME=T`, `--tag-thresholds`), read in this one place.
"""

from __future__ import annotations

import argparse

from indexer.cli.options import Context, threshold_value
from indexer.config import threshold_or_default
from indexer.errors import UsageError
from indexer.export.thresholds import Thresholds


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


def rules_from(args: argparse.Namespace, ctx: Context, model: str) -> Thresholds:
    """The model table's thresholds, with those the options ask for instead."""
    entry = ctx.config.models.get(model)
    default = threshold_value(
        args.threshold, threshold_or_default(entry.threshold if entry else None)
    )
    categories = entry.category_thresholds() if entry else {}
    categories.update(asked_categories(args))
    mcut = bool(getattr(args, "mcut", False))
    return Thresholds(default, tuple(categories.items()), mcut, args.tag_thresholds)


def refuse_categories(args: argparse.Namespace, model: str, present: set[str]) -> None:
    """A category threshold for a category the model's tag list lacks would do nothing
    (`--general` on a plain list, `--category year=0.5` on WD's)."""
    for name in asked_categories(args):
        if name in present:
            continue
        plain = name in ("general", "character") and getattr(args, name) is not None
        option = f"--{name}" if plain else f"--category {name}"
        what = "no categories" if not present else f"no {name} tags ({', '.join(sorted(present))})"
        raise UsageError(
            f"{option} applies to tag lists with categories; model {model!r} has {what}"
        )
