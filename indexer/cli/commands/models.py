"""`dtindex models`: each model's family, input, tags, thresholds, version and coverage.

Coverage counts the pictures present now: tagged by the current version, failed, and
still to do (the next `scan` tags those). Models whose files are missing say so.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from sqlalchemy import Connection

from indexer.cli.options import Context, cache_folder
from indexer.config import threshold_or_default
from indexer.errors import DtindexError
from indexer.model_tables import ModelEntry, builtin_entry
from indexer.models.published import family
from indexer.models.versions import identify
from indexer.store.engine import open_index
from indexer.store.queries import coverage, versions

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per model")


def _entries(ctx: Context) -> list[ModelEntry]:
    entries = list(ctx.config.models.values())
    if "palette" not in ctx.config.models:
        entries.append(builtin_entry())
    return entries


def _row(entry: ModelEntry, ctx: Context, conn: Connection | None) -> dict[str, object]:
    """One model's facts: settings, version, and its coverage of the index."""
    row: dict[str, object] = {"name": entry.name, "enabled": entry.enabled}
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


def _line(row: dict[str, object]) -> str:
    if "error" in row:
        line = f"{row['name']}: unavailable: {row['error']}"
    else:
        line = _describe(row)
        if "pictures" in row:
            line += (
                f"; {row['tagged']} of {row['pictures']} pictures tagged, "
                f"{row['failed']} failed, {row['todo']} to do"
            )
    return line if row["enabled"] else line + " (disabled)"


def run(args: argparse.Namespace, ctx: Context) -> int:
    db = ctx.database_path()
    engine = open_index(db, readonly=True) if db.is_file() else None
    try:
        conn = engine.connect() if engine else None
        rows = [_row(entry, ctx, conn) for entry in _entries(ctx)]
        older = versions(conn) if conn is not None else []
        if conn is not None:
            conn.close()
    finally:
        if engine is not None:
            engine.dispose()
    for row in rows:
        text = json.dumps(row) if args.json else _line(row)
        ctx.stdout.write(text.encode() + b"\n")
    if not args.json and older:
        current = {(r["name"], r.get("version")) for r in rows}
        for model, version, title, count in older:
            if (model, version) not in current:
                ctx.stdout.write(
                    f"  stored: {model} version {version} ({title}, {count} tags)\n".encode()
                )
    ctx.stdout.flush()
    return 0


def _describe(row: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in row["categories"].items())
    limits = "".join(f", {k} {row[k]}" for k in ("general", "character") if row[k] is not None)
    return (
        f'{row["name"]}: {row["family"]} "{row["title"]}", input {row["input"]}, '
        f"{row['tags']} tags{f' ({kinds})' if kinds else ''}, "
        f"threshold {row['threshold']}{limits}, version {row['version']}"
    )
