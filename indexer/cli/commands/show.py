"""`dtindex show PATH`: a picture's stored tags, per model, with their scores, and each
model version that failed on it, with the reason."""

from __future__ import annotations

import argparse
import os
from typing import Any

from sqlalchemy import text

from indexer.cli.lookup import failures, not_indexed
from indexer.cli.options import Context, threshold_value
from indexer.errors import UsageError
from indexer.store.current import chosen_version
from indexer.store.engine import open_index

FAILURE = 1

_QUERY = f"""
SELECT v.model, v.version, tg.name, tg.category, s.score
FROM files f
JOIN model_versions v ON v.id = {chosen_version("f.content_id")}
JOIN scores s ON s.model_version_id = v.id AND s.content_id = f.content_id
JOIN tags tg ON tg.model_version_id = s.model_version_id AND tg.idx = s.tag_idx
WHERE f.path = :path AND s.score > :t
ORDER BY s.score DESC
"""
_MODELS = """
SELECT DISTINCT v.model FROM files f JOIN taggings t ON t.content_id = f.content_id
JOIN model_versions v ON v.id = t.model_version_id
WHERE f.path = :path AND t.status = 'done' ORDER BY v.model
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a picture in an indexed root")
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        default=0.1,
        metavar="T",
        help="show scores above T (default 0.1)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    threshold = threshold_value(args.threshold, 0.1)
    path = os.fsencode(os.path.abspath(args.path))
    engine = open_index(ctx.database(), readonly=True)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT c.sha1, c.width, c.height, f.error FROM files f "
                    "LEFT JOIN contents c ON c.id = f.content_id "
                    "WHERE f.path = :p"
                ),
                {"p": path},
            ).first()
            if row is None:
                raise UsageError(not_indexed(args.path, path, ctx.config.scan.extensions))
            rows: list[Any] = []
            for (model,) in conn.execute(text(_MODELS), {"path": path}).all():
                values = {"path": path, "t": threshold, "model": model}
                values["current"] = ctx.current_version(model)
                rows += conn.execute(text(_QUERY), values).all()
            failed = failures(conn, path)
    finally:
        engine.dispose()
    sha1, width, height, error = row
    size = f", {width}x{height}" if width is not None else ""
    lines = [f"{os.fsdecode(path)}", f"  sha1 {sha1}{size}" if sha1 else ""]
    if error:
        lines.append(f"  unreadable: {error}")
    lines += [f"  failed: {model} (version {version}): {why}" for model, version, why in failed]
    current = None
    for model, version, tag, category, score in rows:
        if model != current:
            lines.append(f"{model} (version {version}):")
            current = model
        kind = f" [{category}]" if category is not None else ""
        lines.append(f"  {tag}\t{score:.3f}{kind}")
    ctx.stdout.write(
        "\n".join(line for line in lines if line).encode("utf-8", "surrogateescape") + b"\n"
    )
    return 0
