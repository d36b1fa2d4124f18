"""`dtindex models`: each model's family, input, tags, thresholds, version and coverage.

Coverage counts the pictures present now: tagged by the current version, failed, and
still to do. `*` marks the models a `scan` without `--model` runs (the enabled ones,
else the built-in palette). Models whose files are missing say so. Each model is a few
lines that fit a terminal 100 columns wide.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from typing import Any

from indexer.cli.options import Context
from indexer.core.records import StoredVersion
from indexer.wording import plural

FAILURE = 1
WIDTH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per model")


def _lines(row: dict[str, Any]) -> list[str]:
    """A model in a few lines: name, family and title; input, tags and thresholds;
    version and coverage. Each is wrapped to WIDTH."""
    head = f"{'*' if row['scan'] else ' '} {row['name']}: "
    if "error" in row:
        parts = [f"unavailable: {row['error']}"]
    else:
        kinds = ", ".join(f"{k} {n}" for k, n in row["categories"].items())
        limits = "".join(f", {k} {row[k]}" for k in ("general", "character") if row[k] is not None)
        version = f"version {row['version']}"
        if "pictures" in row:
            version += (
                f": {row['tagged']} of {plural(row['pictures'], 'picture')} tagged, "
                f"{row['failed']} failed, {row['todo']} to do"
            )
        parts = [
            f'{row["family"]} "{row["title"]}"',
            f"input {row['input']}, {plural(row['tags'], 'tag')}{f' ({kinds})' if kinds else ''}, "
            f"threshold {row['threshold']}{limits}",
            version,
        ]
    if not row["enabled"]:
        parts[0] += " (disabled)"
    lines = _wrap(parts[0], head, "    ")
    for part in parts[1:]:
        lines += _wrap(part, "    ", "      ")
    return lines


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """Lines of WIDTH at most, cut between words only: a path stays whole to copy."""
    return textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.index() as index:
        found = index.models()
    rows = [info.as_dict() for info in found.models]
    if args.json:
        lines = [json.dumps(row) for row in rows]
    else:
        lines = [f"config: {ctx.config_shown()}", *_listing(rows, found.stored)]
    ctx.stdout.write("".join(f"{line}\n" for line in lines).encode())
    ctx.stdout.flush()
    return 0


def _listing(rows: list[dict[str, object]], older: Sequence[StoredVersion]) -> list[str]:
    lines = [line for row in rows for line in _lines(row)]
    current = {(r["name"], r.get("version")) for r in rows}
    for old in older:
        if (old.model, old.version) not in current:
            stored = (
                f"stored: {old.model} version {old.version} ({old.title}, "
                f"{plural(old.tags, 'tag')})"
            )
            lines += _wrap(stored, "  ", "    ")
    return [*lines, "* scan runs these (the enabled models, else the built-in palette)"]
