"""Writes and lookups a scan needs, on the one connection it keeps open.

Every write lands in a `batch` (`store.unit`): the scan records a group of files, a
batch of results or a failure in one short transaction each, so a scan killed at any
moment keeps all but the last moment's work and the next scan picks up exactly what is
missing. A method that writes opens a batch of its own; inside a caller's, it joins it.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, and_, bindparam, delete, exists, insert, select, tuple_, update

from indexer.errors import Failure, Kind
from indexer.store.driver import INSERTS, Direct
from indexer.store.intake import (
    ADD_SCORE,
    DROP_SCORES,
    PUT_EMBEDDING,
    PUT_TAGGING,
    RELEASE,
    chunks,
    put_files,
)
from indexer.store.likeness import stored_vectors
from indexer.store.retry import Attempt
from indexer.store.schema import (
    contents,
    files,
    model_versions,
    roots,
    taggings,
    tags,
)
from indexer.store.under import bounds
from indexer.store.unit import batch, settle


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


# The raw cursor: SQLAlchemy's row objects cost half a second per 100,000 files, and an
# unchanged rescan of that many should take well under two seconds.
def _row_columns() -> list[Any]:  # a `FileRow`'s, in its order: the table has more
    return [files.c[name] for name in FileRow._fields]


_FILES_BELOW = Direct(
    lambda _: select(*_row_columns()).where(
        files.c.path >= bindparam("low"), files.c.path < bindparam("high")
    ),
    "low",
    "high",
)


class Records:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- transactions (`store.unit`) ----------------------------------------------
    def batch(self) -> AbstractContextManager[Connection]:
        """One unit of work: what is written inside commits together when it ends."""
        return batch(self.conn)

    def settle(self) -> None:
        """End the transaction reads left open, so no snapshot is held while waiting."""
        settle(self.conn)

    # -- roots --------------------------------------------------------------------
    def root_id(self, path: bytes, device: int) -> int:
        """The root's id, its row made where there is none."""
        # Insert first: the write takes the lock, so a concurrent writer cannot race us.
        # Its own batch: never hold the write lock through a walk.
        with self.batch() as conn:
            add = INSERTS[conn.dialect.name](roots).values(path=path, device=device)
            conn.execute(add.on_conflict_do_nothing())
            found = self._root_row(conn, path, device)
        assert found is not None  # inserted, or there already
        return found

    def existing_root_id(self, path: bytes, device: int) -> int | None:
        """The root's id; None where its row is gone (a root a running watch holds,
        forgotten meanwhile, is not made anew behind `forget`)."""
        with self.batch() as conn:
            return self._root_row(conn, path, device)

    @staticmethod
    def _root_row(conn: Connection, path: bytes, device: int) -> int | None:
        conn.execute(update(roots).where(roots.c.path == path).values(device=device))
        found = conn.execute(select(roots.c.id).where(roots.c.path == path)).scalar()
        return None if found is None else int(found)

    def present_root_ids(self) -> set[int]:
        found = set(self.conn.execute(select(roots.c.id)).scalars())
        self.settle()
        return found

    def root_paths(self) -> list[bytes]:
        return list(self.conn.execute(select(roots.c.path).order_by(roots.c.id)).scalars())

    def mark_scanned(self, root_id: int, when_ns: int) -> None:
        with self.batch() as conn:
            conn.execute(update(roots).where(roots.c.id == root_id).values(scanned_ns=when_ns))

    # -- files --------------------------------------------------------------------
    def files_below(self, folder: bytes) -> dict[bytes, FileRow]:
        """Every file row under `folder`, whichever root row owns it.

        By path, not by root: with nested roots (a disk mounted inside another root)
        the same files lie under both, and a scan of either must see them as known.
        """
        cursor = _FILES_BELOW.run(self.conn, bounds(folder)).cursor
        assert cursor is not None
        make = FileRow._make
        return {row[1]: make(row) for row in cursor.fetchall()}

    def files_at(self, path: bytes) -> dict[bytes, FileRow]:
        """The row for `path` and, when it is (or was) a folder, every row below it."""
        low, high = bounds(path)
        query = select(*_row_columns()).where(
            (files.c.path == path) | ((files.c.path >= low) & (files.c.path < high))
        )
        return {row.path: FileRow(**row._mapping) for row in self.conn.execute(query)}

    def files_sharing(self, inodes: Sequence[tuple[int, int]]) -> dict[bytes, FileRow]:
        """Rows on these (device, inode)s: every name of a hard-linked file."""
        found: dict[bytes, FileRow] = {}
        for start in range(0, len(inodes), 500):
            pairs = tuple_(files.c.device, files.c.inode).in_(inodes[start : start + 500])
            rows = self.conn.execute(select(*_row_columns()).where(pairs))
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
        with self.batch() as conn:
            put_files(conn, [row])

    def move_file(self, file_id: int, path: bytes, root_id: int) -> None:
        moved = {"path": path, "root_id": root_id, "named_ns": time.time_ns()}
        with self.batch() as conn:
            conn.execute(delete(files).where(files.c.path == path))
            conn.execute(update(files).where(files.c.id == file_id).values(moved))

    def delete_files(self, ids: Sequence[int]) -> None:
        with self.batch() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(delete(files).where(files.c.id.in_(ids[start : start + 500])))

    def delete_path(self, path: bytes) -> int:
        with self.batch() as conn:
            return int(conn.execute(delete(files).where(files.c.path == path)).rowcount)

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
        """The id of a model version, its row and tags added (together) if new."""
        values = dict(model=model, version=version, title=title, tag_count=len(names),
                      created_ns=time.time_ns())  # fmt: skip
        with self.batch() as conn:
            add = INSERTS[conn.dialect.name](model_versions).values(values)
            # an INSERT's rowcount (whether it was added) is kept only when asked for
            add = add.on_conflict_do_nothing().execution_options(preserve_rowcount=True)
            created = conn.execute(add)
            query = select(model_versions.c.id).where(
                model_versions.c.model == model, model_versions.c.version == version
            )
            version_id = int(conn.execute(query).scalar_one())
            if created.rowcount == 1:
                limits = thresholds or [None] * len(names)
                rows = [
                    dict(model_version_id=version_id, idx=i, name=n, category=c, threshold=t)
                    for i, (n, c, t) in enumerate(zip(names, categories, limits, strict=True))
                ]
                conn.execute(insert(tags), rows)
        return version_id

    def unsettled(
        self, version_id: int, attempt: Attempt, among: Collection[int] | None = None
    ) -> Iterator[tuple[int, bytes, str]]:
        """Present contents the version still has to tag: id, path, xxh3-128, once per
        path, each content's paths together and least first; `among`: only these."""
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
        parts = [query] if among is None else [
            query.where(files.c.content_id.in_(part)) for part in chunks(sorted(set(among)))
        ]  # fmt: skip
        for part in parts:
            for content_id, path, xxh in self.conn.execute(part).all():
                yield int(content_id), bytes(path), str(xxh)

    def record_scores(
        self,
        version_id: int,
        content_ids: Sequence[int],
        matrix: NDArray[np.float32],
        floor: float,
        embeddings: NDArray[np.float32] | None = None,
    ) -> None:
        """A batch's results: scores at or above `floor`, embeddings, the taggings, claims
        released; the one write path of scores and embeddings.

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
        with self.batch() as conn:
            DROP_SCORES.run(conn, pairs)
            if len(picture):
                ADD_SCORE.run(conn, list(rows))
            if embeddings is not None:
                vectors = zip(itertools.repeat(version_id), content_ids, stored_vectors(embeddings))
                PUT_EMBEDDING.run(conn, list(vectors))
            done = [(version_id, c, "done", None, now, None, None) for c in content_ids]
            PUT_TAGGING.run(conn, done)
            RELEASE.run(conn, pairs)

    def record_failure(self, version_id: int, content_id: int, failure: Failure) -> None:
        """A picture's failure for a version, its claim released: the one write path."""
        row = (version_id, content_id, "failed", failure.reason, time.time_ns(),
               failure.kind.value, failure.needs)  # fmt: skip
        with self.batch() as conn:
            PUT_TAGGING.run(conn, row)
            RELEASE.run(conn, (version_id, content_id))
