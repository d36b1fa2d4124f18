"""Timing `dtindex similar`'s exact search as a gallery grows (printed, never asserted).

    python -m benchmarks.similar --sizes 10000,100000,1000000 --dims 1024

Builds an index through dtindex's own migrations and fills one model version's
embeddings with random unit vectors stored as dtindex stores them (float16, via
`stored_vectors`), growing it size by size. At each size it times the real search
(`store.likeness.nearest`: read the vectors from SQLite in chunks, score, keep the best)
against a baseline measured in the same run: the same product over a float32 matrix
already in memory, the least an exact search can cost. Cold and warm page cache are
not told apart: the index is read right after it is written, as on a machine whose
memory holds it.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.store.engine import open_index
from indexer.store.likeness import nearest, stored_vectors

QUERIES = 5


def grow(engine: object, start: int, stop: int, dims: int, rng: np.random.Generator) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        raw = conn.connection.dbapi_connection
        for low in range(start, stop, 50_000):
            high = min(stop, low + 50_000)
            ids = range(low + 1, high + 1)
            raw.executemany(
                "INSERT INTO contents (id, xxh128, sha1, size) VALUES (?, ?, ?, 1)",
                ((i, f"{i:032x}", f"{i:040x}") for i in ids),
            )
            vectors = stored_vectors(rng.standard_normal((high - low, dims), np.float32))
            raw.executemany(
                "INSERT INTO embeddings VALUES (1, ?, ?)", zip(ids, vectors, strict=True)
            )


def in_memory(matrix: np.ndarray, query: np.ndarray, n: int) -> np.ndarray:
    scores = matrix @ query
    top = np.argpartition(-scores, n)[:n]
    return top[np.argsort(-scores[top])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    print(f"# similar: exact search, {args.dims} dims, float16 in SQLite; {platform.node()}")
    print("pictures\tindex MB\tsearch ms\tin-memory ms\tratio")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.sqlite"
        engine = open_index(path)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO model_versions VALUES (1, 'm', 'v', 'synthetic', 1, 0)"
            )
        done = 0
        for size in sizes:
            grow(engine, done, size, args.dims, rng)
            done = size
            queries = rng.standard_normal((QUERIES, args.dims)).astype(np.float32)
            with engine.connect() as conn:
                nearest(conn, 1, queries[0], args.n, leave_out=0)  # warm the page cache
                start = time.perf_counter()
                for query in queries:
                    nearest(conn, 1, query, args.n, leave_out=0)
                ours = (time.perf_counter() - start) / QUERIES
                rows = conn.exec_driver_sql("SELECT vector FROM embeddings ORDER BY content_id")
                matrix = np.frombuffer(b"".join(r[0] for r in rows), np.float16)
            matrix = matrix.reshape(size, args.dims).astype(np.float32)
            start = time.perf_counter()
            for query in queries:
                in_memory(matrix, query / np.linalg.norm(query), args.n)
            floor = (time.perf_counter() - start) / QUERIES
            del matrix
            megabytes = path.stat().st_size / 1e6
            row = (size, f"{megabytes:.0f}", f"{ours * 1000:.0f}", f"{floor * 1000:.1f}")
            print(*row, f"{ours / floor:.1f}", sep="\t")
        engine.dispose()


if __name__ == "__main__":
    main()
