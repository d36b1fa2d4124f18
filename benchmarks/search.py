"""Timing `dtindex search` on a large synthetic index (timings printed, never asserted).

    python -m benchmarks.search --pictures 100000

Builds an index through dtindex's own migrations holding N pictures tagged by one model
of 5,000 tags, each picture with 40 stored scores drawn from a Zipf-like popularity
(common tags like `1girl` on most pictures, rare ones on few), then times queries.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.store.engine import open_index
from indexer.store.search import search

QUERIES = [
    "tag_0",
    "tag_0 tag_1",
    "tag_0 -tag_1",
    "tag_3 tag_40 tag_200",
    "tag_4000",
    "tag_10 tag_20 --any",
    "-tag_0",
]


def build(path: Path, pictures: int, tags: int = 5000, per_picture: int = 40) -> None:
    engine = open_index(path)
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, tags + 1)
    popularity /= popularity.sum()
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("INSERT INTO roots (id, path, device) VALUES (1, x'2f67', 1)")
        raw.execute(
            "INSERT INTO model_versions (id, model, version, title, tag_count, created_ns) "
            "VALUES (1, 'm', 'v1', 'synthetic', ?, 0)",
            (tags,),
        )
        raw.executemany(
            "INSERT INTO tags VALUES (1, ?, ?, 0)", [(i, f"tag_{i}") for i in range(tags)]
        )
        raw.executemany(
            "INSERT INTO contents (id, xxh128, sha1, size) VALUES (?, ?, ?, 1)",
            ((i, f"{i:032x}", f"{i:040x}") for i in range(1, pictures + 1)),
        )
        raw.executemany(
            "INSERT INTO files (id, path, root_id, size, mtime_ns, inode, device, content_id, "
            "checked_ns) VALUES (?, ?, 1, 1, 0, ?, 1, ?, 0)",
            ((i, f"/g/{i:07}.png".encode(), i, i) for i in range(1, pictures + 1)),
        )
        raw.executemany(
            "INSERT INTO taggings VALUES (1, ?, 'done', NULL, 0)",
            ((i,) for i in range(1, pictures + 1)),
        )

        def rows():
            for content in range(1, pictures + 1):
                chosen = rng.choice(tags, per_picture, replace=False, p=popularity)
                scores = rng.random(per_picture)
                for tag, score in zip(chosen, scores, strict=True):
                    yield 1, content, int(tag), float(score)

        raw.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)", rows())
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pictures", type=int, default=100_000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "search.sqlite"
    start = time.perf_counter()
    build(path, args.pictures)
    print(f"built {args.pictures:,} pictures x 40 scores in {time.perf_counter() - start:.1f} s")
    engine = open_index(path, readonly=True)
    with engine.connect() as conn:
        for query in QUERIES:
            any_of = "--any" in query
            terms = [t for t in query.split() if t != "--any"]
            wanted = [t for t in terms if not t.startswith("-")]
            unwanted = [t[1:] for t in terms if t.startswith("-")]
            search(conn, "m", None, wanted, unwanted, 0.5, any_of)  # warm the cache
            start = time.perf_counter()
            found = search(conn, "m", None, wanted, unwanted, 0.5, any_of)
            took = time.perf_counter() - start
            print(f"{query!r:28} {len(found):7,} pictures  {took * 1000:8.1f} ms")
    engine.dispose()


if __name__ == "__main__":
    main()
