"""Removing what the index no longer needs: forgotten roots, and results nothing uses.

A scan never drops a root (a missing one may be an unmounted disk) and never drops a
content or a model version (a file may come back; an old version stays exported until
the new one has caught up), so the index only grows. These are the explicit ways to
shrink it. Each runs in one transaction holding the write lock from its start
(`store.writelock`): a concurrent scan waits
rather than seeing half of it, and an interrupted run leaves the index as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, bindparam, delete, exists, select, text, update

from indexer.errors import UsageError
from indexer.store.current import present_best
from indexer.store.intake import chunks
from indexer.store.schema import (
    claims,
    contents,
    embeddings,
    files,
    model_versions,
    roots,
    scores,
    taggings,
    tags,
)
from indexer.store.under import bounds, holds
from indexer.store.unit import unit

# Tables holding per-content or per-version results, none of them with a foreign key
# that would cascade (scores and claims have none), so each is cleaned explicitly.
_RESULT_TABLES = (scores, embeddings, taggings, claims)


@dataclass(frozen=True)
class Forgotten:
    """What `forget_roots` did: roots and files removed, files moved to another root;
    with their paths, sorted."""

    roots: int
    files: int
    reassigned: int
    root_paths: tuple[bytes, ...] = ()
    file_paths: tuple[bytes, ...] = ()
    reassigned_paths: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Pruned:
    """What `prune` removed; `scores` counts score rows of both contents and versions."""

    contents: int
    model_versions: int
    scores: int


def _delete_where_in(conn: Connection, column: Column[int], ids: Sequence[int]) -> int:
    """Delete the rows of `column`'s table whose `column` is one of `ids`; how many went."""
    removed = 0
    for chunk in chunks(ids):
        removed += int(conn.execute(delete(column.table).where(column.in_(chunk))).rowcount)
    return removed


# -- forget ---------------------------------------------------------------------------
def _innermost(path: bytes, roots: Mapping[bytes, int]) -> int | None:
    """The id of the longest root holding `path`, so nested roots keep their own files."""
    holders = [r for r in roots if holds(r, path)]
    return roots[max(holders, key=len)] if holders else None


def _affected(conn: Connection, gone: Mapping[bytes, int]) -> dict[int, tuple[bytes, int]]:
    """Files inside a forgotten root by path, plus any still attached to one by id.

    By path, because a file inside a forgotten root may be recorded under an outer
    root; by id, because deleting a root cascades to its files whatever their paths.
    A range on the unique path index, not LIKE: `/a/g2` must not match `/a/g`, and
    `0` is the byte after `/`.
    """
    found: dict[int, tuple[bytes, int]] = {}
    for root, root_id in gone.items():
        low, high = bounds(root)
        inside = (files.c.path >= low) & (files.c.path < high)
        query = select(files.c.id, files.c.path, files.c.root_id)
        rows = conn.execute(query.where(inside | (files.c.root_id == root_id)))
        found.update((int(i), (bytes(p), int(r))) for i, p, r in rows)
    return found


def _unknown_roots(asked: Sequence[bytes], known: Mapping[bytes, int]) -> UsageError:
    missing = ", ".join(os.fsdecode(p) for p in asked if p not in known)
    listed = ", ".join(os.fsdecode(p) for p in sorted(known)) or "none"
    return UsageError(f"not an indexed root: {missing}; nothing was removed (roots: {listed})")


def forget_roots(engine: Engine, paths: Sequence[bytes]) -> Forgotten:
    """Remove roots (as `core.places.key` spells them) and their files from the index.

    A file inside a forgotten root that also lies inside a remaining root is kept and
    attached to the innermost such root (`reassigned` counts those whose root changed),
    so its stat and content survive and the next scan of that root reads nothing again.
    Unknown roots are refused before anything changes. Contents and tags stay (identical
    pictures elsewhere share them); `prune` drops them.
    """
    asked = list(dict.fromkeys(paths))
    with unit(engine, immediate=True) as conn:
        rows = conn.execute(select(roots.c.path, roots.c.id)).all()
        known = {bytes(p): int(i) for p, i in rows}
        if any(p not in known for p in asked):
            raise _unknown_roots(asked, known)
        gone = {p: known[p] for p in asked}
        remaining = {p: i for p, i in known.items() if p not in gone}
        moves: list[dict[str, int]] = []
        drops: list[int] = []
        dropped, moved = [], []
        for file_id, (path, root_id) in _affected(conn, gone).items():
            target = _innermost(path, remaining)
            if target is None:
                drops.append(file_id)
                dropped.append(path)
            elif target != root_id:
                moves.append({"root": target, "file": file_id})
                moved.append(path)
        if moves:
            move = update(files).where(files.c.id == bindparam("file"))
            conn.execute(move.values(root_id=bindparam("root")), moves)
        removed = _delete_where_in(conn, files.c.id, drops)
        _delete_where_in(conn, roots.c.id, list(gone.values()))
    return Forgotten(
        len(gone),
        removed,
        len(moves),
        tuple(sorted(gone)),
        tuple(sorted(dropped)),
        tuple(sorted(moved)),
    )


# -- prune ----------------------------------------------------------------------------
def model_names(engine: Engine) -> list[str]:
    """Every model with a stored version, configured or not."""
    with engine.connect() as conn:
        query = select(model_versions.c.model).distinct().order_by(model_versions.c.model)
        return [str(name) for name in conn.execute(query).scalars()]


def _printed_versions(conn: Connection, model: str, current: str | None) -> set[int]:
    """The versions of `model` an export prints for some present content: the very rule
    the export uses (`store.current`), so a new version that has not caught up (a scan
    stopped part-way, a picture over the limit) keeps the older results still shown."""
    best = present_best()
    query = select(best.c.mv).distinct().where(best.c.mv.is_not(None))
    return {int(v) for v in conn.execute(query, {"model": model, "current": current}).scalars()}


def _stale_versions(conn: Connection, configured: Mapping[str, str | None]) -> list[int]:
    """Versions neither configured, nor the newest of their model, nor printed by an export.

    The newest stays even when not configured: a setting being tried out should not lose
    its results to a prune. A model missing from `configured` (appeared since the caller
    looked) counts as not described, as an export would take it.
    """
    columns = model_versions.c
    rows = conn.execute(select(columns.id, columns.model, columns.version)).all()
    newest: dict[str, int] = {}
    for version_id, model, _ in rows:
        newest[str(model)] = max(newest.get(str(model), 0), int(version_id))
    kept = {v for m in newest for v in _printed_versions(conn, m, configured.get(m))}
    return sorted(
        int(version_id)
        for version_id, model, version in rows
        if int(version_id) != newest[str(model)]
        and version != configured.get(str(model))
        and int(version_id) not in kept
    )


def _orphan_contents(conn: Connection) -> list[int]:
    """Contents no file points to any more (their files were deleted or forgotten)."""
    used = exists().where(files.c.content_id == contents.c.id)
    query = select(contents.c.id).where(~used).order_by(contents.c.id)
    return [int(i) for i in conn.execute(query).scalars()]


def _drop(conn: Connection, column: str, ids: Sequence[int], owner: Column[int]) -> int:
    """Delete the results keyed by `column`, then the owning rows (`owner`, their ids,
    with a version's tags); returns how many score rows went."""
    removed = 0
    for table in _RESULT_TABLES:
        count = _delete_where_in(conn, table.c[column], ids)
        removed += count if table is scores else 0
    if owner.table is model_versions:
        _delete_where_in(conn, tags.c.model_version_id, ids)
    _delete_where_in(conn, owner, ids)
    return removed


def prune(engine: Engine, configured: Mapping[str, str | None]) -> Pruned:
    """Remove unreferenced contents and superseded model versions, with their results.

    `configured` maps a model name to the version its config describes now (None when
    unknown). Exports are unchanged: they read present contents only, and every version
    they use for one of those (`store.current`) stays, as do the configured and the newest.
    """
    with unit(engine, immediate=True) as conn:
        versions = _stale_versions(conn, configured)
        removed = _drop(conn, "model_version_id", versions, model_versions.c.id)
        orphans = _orphan_contents(conn)
        removed += _drop(conn, "content_id", orphans, contents.c.id)
    return Pruned(contents=len(orphans), model_versions=len(versions), scores=removed)


def vacuum(engine: Engine) -> None:
    """Give the freed pages back to the file system. VACUUM cannot run inside a
    transaction, so it goes through a connection in autocommit mode."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM"))
