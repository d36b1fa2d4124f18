"""What an index holds per picture: bytes for the files, per stored score, per embedding.

    python -m benchmarks.sizing --pictures 20000
    python -m benchmarks.sizing --pictures 20000 --db postgresql://USER@HOST:PORT/DB

Builds an index through dtindex's own migrations (SQLite by default, or the database
`--db` names, which must be empty) in three steps and measures its size after each:
N pictures with one file each; then one model version's taggings with `--scores`
stored scores per picture, `--searchable` of them at or above the search floor (in the
partial by-tag index); then a 1,024-dimension float16 embedding per picture. Sizes are
the SQLite file after a checkpoint, or `pg_database_size` after VACUUM.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from indexer.store.engine import open_index
from indexer.store.likeness import stored_vectors


def size(engine: Engine, path: Path | None) -> int:
    with engine.connect() as conn:
        if path is not None:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return path.stat().st_size
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM")
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def insert(engine: Engine, sql: str, rows: list[dict[str, object]]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(text(sql), rows[start : start + 20_000])


def build_files(engine: Engine, n: int) -> None:
    insert(
        engine, "INSERT INTO roots (id, path, device) VALUES (:i, :p, 1)", [{"i": 1, "p": b"/g"}]
    )
    contents = [{"i": i, "x": f"{i:032x}", "s": f"{i:040x}"} for i in range(1, n + 1)]
    insert(engine, "INSERT INTO contents (id, xxh128, sha1, size, width, height) "
                   "VALUES (:i, :x, :s, 123456, 1024, 1448)", contents)  # fmt: skip
    files = [{"i": i, "p": f"/g/{i // 1000:04}/{i:08}.jpg".encode()} for i in range(1, n + 1)]
    insert(engine, "INSERT INTO files (id, path, root_id, size, mtime_ns, inode, device, "
                   "content_id, checked_ns) VALUES (:i, :p, 1, 123456, 1700000000000000000, "
                   ":i, 1, :i, 1700000000000000000)", files)  # fmt: skip


def build_scores(engine: Engine, n: int, per_picture: int, searchable: int) -> None:
    insert(engine, "INSERT INTO model_versions VALUES (1, 'm', 'v', 'synthetic', 10000, 0)", [{}])
    taggings = [{"c": i} for i in range(1, n + 1)]
    insert(engine, "INSERT INTO taggings (model_version_id, content_id, status, tagged_ns) "
                   "VALUES (1, :c, 'done', 1700000000000000000)", taggings)  # fmt: skip
    rng = np.random.default_rng(0)
    rows = []
    for content in range(1, n + 1):
        tags = rng.choice(10_000, per_picture, replace=False)
        high = rng.uniform(0.1, 1.0, searchable)
        low = rng.uniform(0.01, 0.1, per_picture - searchable)
        for tag, score in zip(tags.tolist(), np.concatenate([high, low]).tolist(), strict=True):
            rows.append({"c": content, "t": tag, "s": score})
    insert(engine, "INSERT INTO scores VALUES (1, :c, :t, :s)", rows)


def build_embeddings(engine: Engine, n: int) -> None:
    vectors = stored_vectors(np.random.default_rng(1).standard_normal((n, 1024), np.float32))
    rows = [{"c": i + 1, "v": v} for i, v in enumerate(vectors)]
    insert(engine, "INSERT INTO embeddings VALUES (1, :c, :v)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pictures", type=int, default=20_000)
    parser.add_argument("--scores", type=int, default=150, help="stored scores per picture")
    parser.add_argument("--searchable", type=int, default=40, help="of them >= 0.1")
    parser.add_argument("--db", help="an empty database's URL (default: a new SQLite file)")
    args = parser.parse_args()
    path = None if args.db else Path(tempfile.mkdtemp()) / "sizing.sqlite"
    engine = open_index(args.db or str(path))
    n = args.pictures
    empty = size(engine, path)
    build_files(engine, n)
    files = size(engine, path)
    build_scores(engine, n, args.scores, args.searchable)
    scored = size(engine, path)
    build_embeddings(engine, n)
    embedded = size(engine, path)
    engine.dispose()
    where = "PostgreSQL" if args.db else "SQLite"
    print(f"# index size, {where}, {n} pictures; {platform.node()}, {os.cpu_count()} cores")
    print(f"files and contents: {(files - empty) / n:.0f} bytes per picture")
    print(f"one model, {args.scores} stored scores ({args.searchable} >= 0.1): "
          f"{(scored - files) / n:.0f} bytes per picture")  # fmt: skip
    print(f"a 1,024-dimension float16 embedding: {(embedded - scored) / n:.0f} bytes per picture")


if __name__ == "__main__":
    main()
