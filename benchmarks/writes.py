"""Writing scores as the index grows: the partial by-tag index against a full one.

    python -m benchmarks.writes            # 20,000 trained-like, 400 replica-like pictures
    python -m benchmarks.writes --trained 100000

Each picture's scores go through `Records.record_scores` in batches of 8, committed per
batch as a scan does, into a fresh database: once with dtindex's index on scores of at
least 0.1 (migration 0003), once with the full index it replaced. Printed: milliseconds
per picture over the first and the last tenth of the pictures.

Two kinds of score rows (9,083 WD tags, store_threshold 0.01):
- replica-like: the random-weight replicas' scores, uniform in 0..1, all 9,083 stored;
- trained-like: an assumption, for lack of real weights here: 25 confident tags with
  logits around +1 and the rest around -9 (sd 2), so about 150 scores are stored per
  picture and about 25 reach 0.1.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.store.engine import open_index
from indexer.store.intake import add_contents
from indexer.store.records import Records

TAGS = 9083
BATCH = 8
FULL_INDEX = "CREATE INDEX ix_scores_tag ON scores (model_version_id, tag_idx, score)"


def scores(kind: str, rng: np.random.Generator, count: int) -> np.ndarray:
    if kind == "replica-like":
        return rng.random((count, TAGS), dtype=np.float32)
    logits = rng.normal(-9.0, 2.0, (count, TAGS))
    for row in logits:
        row[rng.choice(TAGS, 25, replace=False)] = rng.normal(1.0, 2.0, 25)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def run(kind: str, pictures: int, full_index: bool, folder: Path) -> tuple[float, float, int]:
    """ms per picture over the first and last tenth, and the rows stored."""
    path = folder / f"{kind}-{'full' if full_index else 'partial'}.sqlite"
    engine = open_index(path)
    with engine.connect() as conn:
        index = Records(conn)
        if full_index:
            with index.batch():
                conn.exec_driver_sql("DROP INDEX ix_scores_tag")
                conn.exec_driver_sql(FULL_INDEX)
        names = [f"tag_{i}" for i in range(TAGS)]
        version = index.model_version("m", "v1", "m", names, [0] * TAGS)
        with index.batch():
            rows = [(f"{i:032x}", f"{i:040x}", 1, 1, 1) for i in range(pictures)]
            known = add_contents(conn, rows)
        ids = [known[row[0]] for row in rows]
        rng = np.random.default_rng(0)
        times = []
        for first in range(0, pictures, BATCH):
            batch = ids[first : first + BATCH]
            matrix = scores(kind, rng, len(batch))
            start = time.perf_counter()
            index.record_scores(version, batch, matrix, 0.01)  # commits, as a scan does
            times.append((time.perf_counter() - start) / len(batch))
        rows = int(conn.exec_driver_sql("SELECT COUNT(*) FROM scores").scalar_one())
    engine.dispose()
    tenth = max(1, len(times) // 10)
    return 1000 * float(np.mean(times[:tenth])), 1000 * float(np.mean(times[-tenth:])), rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trained", type=int, default=20_000, help="trained-like pictures")
    parser.add_argument("--replica", type=int, default=400, help="replica-like pictures")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    print("| scores | pictures | rows | index | first tenth ms/picture | last tenth ms/picture |")
    print("|---|---|---|---|---|---|")
    for kind, pictures in (("trained-like", args.trained), ("replica-like", args.replica)):
        last = {}
        for full_index in (True, False):
            first, last[full_index], rows = run(kind, pictures, full_index, folder)
            label = "full (0002)" if full_index else "partial >= 0.1 (0003)"
            print(f"| {kind} | {pictures:,} | {rows:,} | {label} | {first:.2f} | "
                  f"{last[full_index]:.2f} |", flush=True)  # fmt: skip
        print(f"| {kind} | | | last tenth, full / partial | | {last[True] / last[False]:.2f}x |")


if __name__ == "__main__":
    main()
