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
from collections import Counter
from typing import Any

from sqlalchemy import Connection

from indexer.cli.options import Context, cache_folder
from indexer.config import threshold_or_default
from indexer.errors import DtindexError
from indexer.model_tables import ModelEntry, builtin_entry
from indexer.models.published import family
from indexer.models.versions import identify
from indexer.store.engine import index_exists, open_index
from indexer.store.queries import coverage, versions
from indexer.wording import plural

FAILURE = 1
WIDTH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per model")


def _entries(ctx: Context) -> list[ModelEntry]:
    entries = list(ctx.config.models.values())
    if "palette" not in ctx.config.models:
        entries.append(builtin_entry())
    return entries


def _row(entry: ModelEntry, ctx: Context, conn: Connection | None) -> dict[str, object]:
    """One model's facts: settings, version, and its coverage of the index."""
    scanned = {m.name for m in ctx.config.default_models()}
    row: dict[str, object] = {"name": entry.name, "enabled": entry.enabled}
    row["scan"] = entry.name in scanned
    try:
        definition = entry.resolve()
        version, tags = identify(definition, str(cache_folder(ctx.env)))
    except DtindexError as exc:
        row["error"] = str(exc)
        return row
    spec = definition.spec
    kinds = Counter(c for c in tags.categories if c is not None)
    row.update(
        title=definition.title,
        family=family(spec),
        version=version,
        tags=len(tags),
        input=f"{spec.shape} {spec.channels} {spec.size or 'from graph'} {spec.pad}",
        categories=dict(kinds),
        threshold=threshold_or_default(definition.threshold),
        general=definition.general,
        character=definition.character,
    )
    if conn is not None:
        cov = coverage(conn, entry.name, version)
        row.update(
            pictures=cov.present,
            tagged=cov.done,
            failed=cov.failed,
            todo=cov.present - cov.done - cov.failed,
        )
    return row


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
    db = ctx.database()
    engine = open_index(db, readonly=True) if index_exists(db) else None
    try:
        conn = engine.connect() if engine else None
        rows = [_row(entry, ctx, conn) for entry in _entries(ctx)]
        older = versions(conn) if conn is not None else []
        if conn is not None:
            conn.close()
    finally:
        if engine is not None:
            engine.dispose()
    lines = [json.dumps(row) for row in rows] if args.json else _listing(rows, older)
    ctx.stdout.write("".join(f"{line}\n" for line in lines).encode())
    ctx.stdout.flush()
    return 0


def _listing(rows: list[dict[str, object]], older: list[tuple[str, str, str, int]]) -> list[str]:
    lines = [line for row in rows for line in _lines(row)]
    current = {(r["name"], r.get("version")) for r in rows}
    for model, version, title, count in older:
        if (model, version) not in current:
            stored = f"stored: {model} version {version} ({title}, {plural(count, 'tag')})"
            lines += _wrap(stored, "  ", "    ")
    return [*lines, "* scan runs these (the enabled models, else the built-in palette)"]
