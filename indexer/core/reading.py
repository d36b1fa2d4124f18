"""`Index.show` and `Index.similar`: one picture by its path, read from the index."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from indexer.core.lookup import failed_for, failures, file_error, not_indexed
from indexer.core.records import ModelResults, Near, Shown
from indexer.errors import UsageError
from indexer.export.thresholds import Scored
from indexer.store.likeness import nearest, vector_of
from indexer.store.pictures import (
    chosen_version_id,
    chosen_version_of,
    done_models,
    file_row,
    first_paths,
    scores_above,
)

Current = Callable[[str], "str | None"]  # a model's configured version, for readers


def show(
    conn: Connection,
    given: str,
    path: bytes,
    threshold: float,
    current: Current,
    extensions: frozenset[str],
) -> Shown:
    """The picture at `path` (`given`: as the caller named it, for messages)."""
    row = file_row(conn, path)
    if row is None:
        raise UsageError(not_indexed(conn, given, path, extensions))
    results = []
    for model in done_models(conn, path):
        rows = scores_above(conn, path, model, current(model), threshold)
        tags = tuple(Scored(tag, category, score) for _, _, tag, category, score in rows)
        version = rows[0][1] if rows else chosen_version_of(conn, path, model, current(model))
        results.append(ModelResults(model, version, tags))  # no tags: none above threshold
    return Shown(
        path=path,
        sha1=row.sha1,
        width=row.width,
        height=row.height,
        error=row.error,
        failed=tuple(failures(conn, path)),
        results=tuple(results),
    )


def similar(
    conn: Connection,
    given: str,
    path: bytes,
    model: str,
    count: int,
    current: str | None,
    extensions: frozenset[str],
) -> list[Near]:
    """Up to `count` pictures most like the one at `path`, by `model`'s stored
    embeddings, best first; the picture itself and its identical copies left out."""
    row = file_row(conn, path)
    if row is None:
        raise UsageError(not_indexed(conn, given, path, extensions))
    if row.content_id is None:
        raise UsageError(f"{given}: {file_error(conn, path)}")
    content = row.content_id
    version = chosen_version_id(conn, content, model, current)
    if version is None:
        failed = failed_for(conn, given, path, model)
        raise UsageError(failed or f"{given}: not tagged by {model} yet (run dtindex scan)")
    query = vector_of(conn, version, content)
    if query is None:
        raise UsageError(
            f"{given}: {model} stored no embedding for it (tagged before it stored them?)"
        )
    # Contents whose files are gone are skipped: ask for a few more.
    found = nearest(conn, version, query, 2 * count + 16, leave_out=content)
    paths = first_paths(conn, [near.content_id for near in found])
    listed = [Near(n.score, paths[n.content_id]) for n in found if n.content_id in paths]
    return listed[:count]
