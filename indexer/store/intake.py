"""What a scan read, recorded a group at a time: a few statements per group, not per file.

The main process must spend well under a millisecond per picture, so rows go through the
driver's `executemany` with SQL written once, and lookups take a whole group in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Connection

from indexer.store.driver import marks, run
from indexer.store.retry import Attempt

T = TypeVar("T")
# SQLite caps a statement's parameters (999 before 3.32); lookups go in chunks of this.
CHUNK = 500

ContentRow = tuple[str, str, int, int | None, int | None]  # xxh128, sha1, size, width, height
# path, root_id, size, mtime_ns, inode, device, content_id, checked_ns, error, kind, ctime_ns
FileValues = tuple[
    bytes, int, int, int, int, int, int | None, int, str | None, str | None, int | None
]

_ADD_CONTENT = (
    "INSERT INTO contents (xxh128, sha1, size, width, height) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (xxh128) DO UPDATE SET width = excluded.width, height = excluded.height "
    "WHERE contents.width IS NULL AND excluded.width IS NOT NULL"
)
_PUT_FILE = (
    "INSERT INTO files (path, root_id, size, mtime_ns, inode, device, content_id, checked_ns,"
    " error, kind, ctime_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO"
    " UPDATE SET"
    " root_id = excluded.root_id, size = excluded.size, mtime_ns = excluded.mtime_ns,"
    " inode = excluded.inode, device = excluded.device, content_id = excluded.content_id,"
    " checked_ns = excluded.checked_ns, error = excluded.error, kind = excluded.kind,"
    " ctime_ns = excluded.ctime_ns"
)


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def add_contents(conn: Connection, rows: Sequence[ContentRow]) -> dict[str, int]:
    """Insert contents not known yet (a known one gains a size it lacked); ids by xxh3."""
    run(conn, _ADD_CONTENT, list(rows))
    ids: dict[str, int] = {}
    for part in _chunks(sorted({row[0] for row in rows})):
        sql = f"SELECT xxh128, id FROM contents WHERE xxh128 IN ({marks(len(part))})"
        for xxh, content_id in run(conn, sql, tuple(part)):
            ids[str(xxh)] = int(content_id)
    return ids


def put_files(conn: Connection, rows: Sequence[FileValues]) -> None:
    """Insert or update file rows: the one definition of the file upsert."""
    run(conn, _PUT_FILE, list(rows))


def settled_pairs(
    conn: Connection, content_ids: Iterable[int], attempt: Attempt
) -> set[tuple[int, int]]:
    """(model version, content) pairs with nothing left to do, as `attempt` sees them."""
    found: set[tuple[int, int]] = set()
    settled = attempt.settled_sql()
    for part in _chunks(sorted(set(content_ids))):
        sql = (
            "SELECT model_version_id, content_id FROM taggings "
            f"WHERE content_id IN ({marks(len(part))}) AND ({settled})"
        )
        found.update((int(v), int(c)) for v, c in run(conn, sql, tuple(part)))
    return found
