"""Pictures by likeness: embeddings as stored, and an exact nearest-neighbour search.

Vectors are L2-normalised before they are stored as float16, so cosine similarity is a
dot product and a stored vector needs no norm beside it. The search reads a model
version's vectors in chunks and keeps the best `n` of each chunk: memory stays at one
chunk whatever the gallery's size, and no index has to be kept in step with the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, bindparam, func, select

from indexer.store.schema import embeddings

CHUNK = 16384  # vectors per read: 32 MB of float16 at 1,024 dimensions
BLOCK = 256  # vectors turned to float32 at a time: 1 MB, stays in the CPU's cache


def stored_vectors(embeddings: NDArray[np.float32]) -> list[bytes]:
    """Each row L2-normalised and as float16 bytes (half the space; cosine to ~1e-3)."""
    rows = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return [row.tobytes() for row in unit.astype(np.float16)]


def vector_of(conn: Connection, version_id: int, content_id: int) -> NDArray[np.float32] | None:
    query = select(embeddings.c.vector).where(
        embeddings.c.model_version_id == version_id, embeddings.c.content_id == content_id
    )
    row = conn.execute(query).first()
    return None if row is None else np.frombuffer(row[0], np.float16).astype(np.float32)


def count_vectors(conn: Connection, version_id: int) -> int:
    query = select(func.count()).select_from(embeddings)
    query = query.where(embeddings.c.model_version_id == version_id)
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class Near:
    content_id: int
    score: float


def _chunks(conn: Connection, version_id: int) -> Iterator[tuple[NDArray[np.int64], bytes]]:
    """(content ids, their vectors as one buffer) in primary-key order, CHUNK at a time."""
    last = -1
    query = (
        select(embeddings.c.content_id, embeddings.c.vector)
        .where(
            embeddings.c.model_version_id == version_id,
            embeddings.c.content_id > bindparam("last"),
        )
        .order_by(embeddings.c.content_id)
        .limit(CHUNK)
    )
    while True:
        rows = conn.execute(query, {"last": last}).all()
        if not rows:
            return
        ids, vectors = zip(*rows, strict=True)
        last = ids[-1]
        yield np.asarray(ids, np.int64), b"".join(vectors)


def nearest(
    conn: Connection, version_id: int, query: NDArray[np.float32], n: int, leave_out: int
) -> list[Near]:
    """The `n` contents whose vectors are most like `query` (cosine), best first,
    `leave_out` (the query's own content) excepted."""
    unit = (query / max(float(np.linalg.norm(query)), 1e-12)).astype(np.float32)
    best_ids = np.empty(0, np.int64)
    best_scores = np.empty(0, np.float32)
    block = np.empty((BLOCK, len(unit)), np.float32)
    for ids, buffer in _chunks(conn, version_id):
        vectors = np.frombuffer(buffer, np.float16).reshape(len(ids), -1)
        if vectors.shape[1] != len(unit):
            continue  # a vector of another width cannot be compared (a corrupt row)
        scores = np.empty(len(ids), np.float32)
        for start in range(0, len(ids), BLOCK):
            part = vectors[start : start + BLOCK]
            np.copyto(block[: len(part)], part)  # float32 in cache: BLAS, no float16 product
            np.matmul(block[: len(part)], unit, out=scores[start : start + len(part)])
        scores[ids == leave_out] = -np.inf
        best_ids = np.concatenate([best_ids, ids])
        best_scores = np.concatenate([best_scores, scores])
        if len(best_ids) > n:
            top = np.argpartition(-best_scores, n - 1)[:n]
            best_ids, best_scores = best_ids[top], best_scores[top]
    order = np.argsort(-best_scores, kind="stable")
    return [
        Near(int(best_ids[i]), float(best_scores[i])) for i in order if np.isfinite(best_scores[i])
    ]
