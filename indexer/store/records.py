"""Writes and lookups a scan needs, on one connection, committed in batches.

Every write lands in a transaction that `Records.maybe_commit` closes after a few hundred
changes or a second, so a scan killed at any moment keeps all but the last moment's work
and the next scan picks up exactly what is missing.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, and_, delete, exists, insert, select, tuple_, update

from indexer.errors import Failure, Kind
from indexer.store.driver import run
from indexer.store.intake import put_files
from indexer.store.likeness import stored_vectors
from indexer.store.retry import Attempt
from indexer.store.schema import claims, contents, files, model_versions, roots, taggings, tags

# Upserts in the one spelling SQLite (3.24 on) and PostgreSQL both understand.
_KEEP = "ON CONFLICT DO NOTHING"  # a row already there stays as it is
_PUT_EMBEDDING = (
    "INSERT INTO embeddings (model_version_id, content_id, vector) VALUES (?, ?, ?)"
    " ON CONFLICT (model_version_id, content_id) DO UPDATE SET vector = excluded.vector"
)
_PUT_TAGGING = (
    "INSERT INTO taggings (model_version_id, content_id, status, error, tagged_ns, kind,"
    " needs) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_version_id, content_id) DO UPDATE"
    " SET status = excluded.status, error = excluded.error, tagged_ns = excluded.tagged_ns,"
    " kind = excluded.kind, needs = excluded.needs"
)


class FileRow(NamedTuple):
    """A file's row. A named tuple, as `Stat`: a rescan makes one of each per file, and a
    frozen dataclass sets every field through `object.__setattr__`, several times the
    cost of making a tuple."""

    id: int
    path: bytes
    root_id: int
    size: int
    mtime_ns: int
    inode: int
    device: int
    content_id: int | None
    checked_ns: int
    error: str | None
    kind: str | None  # errors.Kind of `error`
    ctime_ns: int | None = None  # the inode's ctime when read: `gallery.jobs.is_unchanged`


class Stat(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    device: int
    # When the inode last changed (0: not known): tells a file replaced over the same
    # name, or a new one given a freed inode, from the file read (`gallery.jobs`).
    ctime_ns: int = 0

    @classmethod
    def of(cls, info: os.stat_result) -> Stat:
        return cls(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, info.st_ctime_ns)


def _below(folder: bytes) -> tuple[bytes, bytes]:
    """Bounds of the paths under a folder: `/a/g/` up to `/a/g0` (`0` follows `/`), so a
    sibling `/a/g2` is not below `/a/g`."""
    low = folder.rstrip(b"/") + b"/"
    return low, low[:-1] + b"0"


class Records:
    def __init__(self, conn: Connection, commit_every: int = 500, commit_seconds: float = 1.0):
        self.conn = conn
        self._pending = 0
        self._last = time.monotonic()
        self._every, self._seconds = commit_every, commit_seconds

    # -- transactions -------------------------------------------------------------
    def maybe_commit(self, changes: int = 1) -> None:
        self._pending += changes
        now = time.monotonic()
        if self._pending >= self._every or now - self._last >= self._seconds:
            self.commit()

    def commit(self) -> None:
        self.conn.commit()
        self._pending, self._last = 0, time.monotonic()

    # -- roots --------------------------------------------------------------------
    def root_id(self, path: bytes, device: int) -> int:
        # Insert first: the write takes the lock, so a concurrent writer cannot race us.
        run(self.conn, "INSERT INTO roots (path, device) VALUES (?, ?) " + _KEEP, (path, device))
        self.conn.execute(update(roots).where(roots.c.path == path).values(device=device))
        found = int(self.conn.execute(select(roots.c.id).where(roots.c.path == path)).scalar_one())
        self.commit()  # never hold the write lock through a walk
        return found

    def present_root_ids(self) -> set[int]:
        found = set(self.conn.execute(select(roots.c.id)).scalars())
        self.commit()
        return found

    def root_paths(self) -> list[bytes]:
        return list(self.conn.execute(select(roots.c.path).order_by(roots.c.id)).scalars())

    def mark_scanned(self, root_id: int, when_ns: int) -> None:
        self.conn.execute(update(roots).where(roots.c.id == root_id).values(scanned_ns=when_ns))

    # -- files --------------------------------------------------------------------
    def files_below(self, folder: bytes) -> dict[bytes, FileRow]:
        """Every file row under `folder`, whichever root row owns it.

        By path, not by root: with nested roots (a disk mounted inside another root)
        the same files lie under both, and a scan of either must see them as known.
        """
        # The raw cursor: SQLAlchemy's row objects cost half a second per 100,000 files,
        # and an unchanged rescan of that many should take well under two seconds.
        low, high = _below(folder)
        sql = f"SELECT {', '.join(FileRow._fields)} FROM files WHERE path >= ? AND path < ?"
        cursor = run(self.conn, sql, (low, high)).cursor
        assert cursor is not None
        make = FileRow._make
        return {row[1]: make(row) for row in cursor.fetchall()}

    def files_at(self, path: bytes) -> dict[bytes, FileRow]:
        """The row for `path` and, when it is (or was) a folder, every row below it."""
        low, high = _below(path)
        query = select(files).where(
            (files.c.path == path) | ((files.c.path >= low) & (files.c.path < high))
        )
        return {row.path: FileRow(**row._mapping) for row in self.conn.execute(query)}

    def files_sharing(self, inodes: Sequence[tuple[int, int]]) -> dict[bytes, FileRow]:
        """Rows on these (device, inode)s: every name of a hard-linked file."""
        found: dict[bytes, FileRow] = {}
        for start in range(0, len(inodes), 500):
            pairs = tuple_(files.c.device, files.c.inode).in_(inodes[start : start + 500])
            rows = self.conn.execute(select(files).where(pairs))
            found.update((row.path, FileRow(**row._mapping)) for row in rows)
        return found

    def put_file(
        self,
        path: bytes,
        root_id: int,
        stat: Stat,
        content_id: int | None,
        checked_ns: int,
        error: str | None = None,
        kind: Kind | None = None,
    ) -> None:
        recorded = kind.value if kind is not None and error is not None else None
        row = (path, root_id, stat.size, stat.mtime_ns, stat.inode, stat.device, content_id,
               checked_ns, error, recorded, stat.ctime_ns or None)  # fmt: skip
        put_files(self.conn, [row])
        self.maybe_commit()

    def move_file(self, file_id: int, path: bytes, root_id: int) -> None:
        self.conn.execute(delete(files).where(files.c.path == path))
        self.conn.execute(
            update(files).where(files.c.id == file_id).values(path=path, root_id=root_id)
        )
        self.maybe_commit()

    def delete_files(self, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), 500):
            self.conn.execute(delete(files).where(files.c.id.in_(ids[start : start + 500])))
            self.maybe_commit(len(ids[start : start + 500]))

    def delete_path(self, path: bytes) -> int:
        return int(self.conn.execute(delete(files).where(files.c.path == path)).rowcount)

    # -- contents -----------------------------------------------------------------
    def content_id(self, xxh128: str) -> int | None:
        found = self.conn.execute(select(contents.c.id).where(contents.c.xxh128 == xxh128)).scalar()
        return None if found is None else int(found)

    def add_content(
        self, xxh128: str, sha1: str, size: int, width: int | None, height: int | None
    ) -> int:
        sql = "INSERT INTO contents (xxh128, sha1, size, width, height) VALUES (?, ?, ?, ?, ?) "
        run(self.conn, sql + _KEEP, (xxh128, sha1, size, width, height))
        if width is not None:
            self.conn.execute(
                update(contents)
                .where(contents.c.xxh128 == xxh128, contents.c.width.is_(None))
                .values(width=width, height=height)
            )
        found = self.content_id(xxh128)
        assert found is not None
        return found

    # -- model versions and results ----------------------------------------------
    def model_version(
        self,
        model: str,
        version: str,
        title: str,
        names: Sequence[str],
        categories: Sequence[str | None],
        thresholds: Sequence[float | None] = (),
    ) -> int:
        values = (model, version, title, len(names), time.time_ns())
        sql = (
            "INSERT INTO model_versions (model, version, title, tag_count, created_ns)"
            " VALUES (?, ?, ?, ?, ?) "
        )
        created = run(self.conn, sql + _KEEP, values)
        query = select(model_versions.c.id).where(
            model_versions.c.model == model, model_versions.c.version == version
        )
        version_id = int(self.conn.execute(query).scalar_one())
        if created.rowcount == 1:  # tags go in the same transaction as their version
            limits = thresholds or [None] * len(names)
            rows = [
                dict(model_version_id=version_id, idx=i, name=n, category=c, threshold=t)
                for i, (n, c, t) in enumerate(zip(names, categories, limits, strict=True))
            ]
            self.conn.execute(insert(tags), rows)
        self.commit()
        return version_id

    def unsettled(self, version_id: int, attempt: Attempt) -> Iterator[tuple[int, bytes, str]]:
        """Present contents the version still has to tag: id, one path, xxh3-128."""
        done = exists().where(
            and_(
                taggings.c.content_id == files.c.content_id,
                taggings.c.model_version_id == version_id,
                attempt.settled(),
            )
        )
        query = (
            select(files.c.content_id, files.c.path, contents.c.xxh128)
            .join(contents, contents.c.id == files.c.content_id)
            .where(~done)
            .order_by(files.c.content_id, files.c.path)
        )
        last = None
        for content_id, path, xxh in self.conn.execute(query).all():
            if content_id != last:  # the first path of each content: the least
                yield int(content_id), bytes(path), str(xxh)
            last = content_id

    def record_scores(
        self,
        version_id: int,
        content_ids: Sequence[int],
        matrix: NDArray[np.float32],
        floor: float,
        embeddings: NDArray[np.float32] | None = None,
    ) -> None:
        """A batch's results: scores at or above `floor`, embeddings, the taggings, claims
        released.

        Whole-batch NumPy and the driver's `executemany`: a WD model keeps about 150 rows
        per picture, and building them one by one in Python cost more than decoding.
        """
        if not content_ids:
            return
        now = time.time_ns()
        picture, tag = np.nonzero(matrix >= floor)
        ids = np.asarray(content_ids, dtype=np.int64)[picture]
        rows = zip(
            itertools.repeat(version_id), ids.tolist(), tag.tolist(), matrix[picture, tag].tolist()
        )
        pairs = [(version_id, c) for c in content_ids]
        conn = self.conn
        run(conn, "DELETE FROM scores WHERE model_version_id = ? AND content_id = ?", pairs)
        if len(picture):
            run(conn, "INSERT INTO scores VALUES (?, ?, ?, ?)", list(rows))
        if embeddings is not None:
            vectors = zip(itertools.repeat(version_id), content_ids, stored_vectors(embeddings))
            run(conn, _PUT_EMBEDDING, list(vectors))
        done = [(version_id, c, "done", None, now, None, None) for c in content_ids]
        run(conn, _PUT_TAGGING, done)
        run(conn, "DELETE FROM claims WHERE model_version_id = ? AND content_id = ?", pairs)
        self.commit()

    def record_failure(self, version_id: int, content_id: int, failure: Failure) -> None:
        row = (version_id, content_id, "failed", failure.reason, time.time_ns(),
               failure.kind.value, failure.needs)  # fmt: skip
        run(self.conn, _PUT_TAGGING, row)
        self.conn.execute(
            delete(claims).where(
                claims.c.model_version_id == version_id, claims.c.content_id == content_id
            )
        )
        self.maybe_commit()
