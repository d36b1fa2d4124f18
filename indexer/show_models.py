"""`dtindex models`: each model, its current version, and how much of the gallery it covers.

Coverage counts the pictures present now: tagged by the current version, failed, and
still to do (the next `scan` tags those). Models whose files are missing say so.
"""

from __future__ import annotations

import argparse
import json

from .config import DEFAULT_THRESHOLD, ModelEntry, builtin_entry
from .context import Context
from .errors import DtindexError
from .models import identify
from .store.database import open_index
from .store.queries import coverage, versions

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per model")


def _entries(ctx: Context) -> list[ModelEntry]:
    entries = list(ctx.config.models.values())
    if "palette" not in ctx.config.models:
        entries.append(builtin_entry())
    return entries


def run(args: argparse.Namespace, ctx: Context) -> int:
    db = ctx.database_path()
    engine = open_index(db, readonly=True) if db.is_file() else None
    rows = []
    try:
        conn = engine.connect() if engine else None
        for entry in _entries(ctx):
            row: dict[str, object] = {"name": entry.name, "enabled": entry.enabled}
            try:
                definition = entry.resolve()
                version, tags = identify(definition)
            except DtindexError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
            row.update(
                title=definition.title,
                version=version,
                tags=len(tags),
                threshold=definition.threshold or DEFAULT_THRESHOLD,
            )
            if conn is not None:
                cov = coverage(conn, entry.name, version)
                row.update(
                    pictures=cov.present,
                    tagged=cov.done,
                    failed=cov.failed,
                    todo=cov.present - cov.done - cov.failed,
                )
            rows.append(row)
        older = versions(conn) if conn is not None else []
        if conn is not None:
            conn.close()
    finally:
        if engine is not None:
            engine.dispose()
    for row in rows:
        if args.json:
            ctx.stdout.write(json.dumps(row).encode() + b"\n")
            continue
        if "error" in row:
            line = f"{row['name']}: unavailable: {row['error']}"
        else:
            line = (
                f"{row['name']}: {row['title']}, version {row['version']}, {row['tags']} tags, "
                f"threshold {row['threshold']}"
            )
            if "pictures" in row:
                line += (
                    f"; {row['tagged']} of {row['pictures']} pictures tagged, "
                    f"{row['failed']} failed, {row['todo']} to do"
                )
        if not row["enabled"]:
            line += " (disabled)"
        ctx.stdout.write(line.encode() + b"\n")
    if not args.json and older:
        current = {(r["name"], r.get("version")) for r in rows}
        for model, version, title, count in older:
            if (model, version) not in current:
                ctx.stdout.write(
                    f"  stored: {model} version {version} ({title}, {count} tags)\n".encode()
                )
    ctx.stdout.flush()
    return 0
