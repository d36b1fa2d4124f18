"""The units of work of a scan: what to read or tag, the counts a scan reports, and how
a group of files read is recorded and counted (`record_looked`).

Whether a file needs reading is decided from its stat alone (`is_unchanged`); the read
itself happens in a decoder process (`imaging.tasks.look`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import Connection

from indexer.errors import Kind
from indexer.imaging.messages import Looked
from indexer.store.intake import add_contents, put_files
from indexer.store.records import FileRow, Stat

RACY_NS = 2_000_000_000  # coarse file-system clocks: FAT keeps 2 s, some NFS servers 1 s


@dataclass
class Counts:
    files: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    hashed: int = 0
    tagged: int = 0  # pictures given a result (by one model or several)
    failed: int = 0
    to_retry: int = 0  # of the failed: not the picture's fault, so the next scan retries

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def add(self, other: Counts) -> None:
        """Sum another run's counts into these (a watch's totals)."""
        for name, value in other.as_dict().items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class ReadJob:
    """A new, changed or racily-clean file: read, hash, and tag what needs it."""

    path: bytes
    root_id: int
    stat: Stat
    known: FileRow | None
    content_id: int | None = None
    read_ns: int = 0  # when the read began: the racy-mtime window counts from here
    was: FileRow | None = None  # a vanished file with this one's stat: moved if same bytes


@dataclass
class TagJob:
    """An indexed content that some selected model version has no result for yet."""

    path: bytes
    content_id: int
    xxh128: str
    wanted: tuple[int, ...]


def is_unchanged(row: FileRow, stat: Stat) -> bool:
    """Whether the file at `row`'s path is still the one read, without reading it.

    Device, inode, size and mtime are not proof on their own: an archive unpacked again
    over the same names (the freed inodes handed back, one mtime for every file) or
    `cp -p` over a file of the same size leaves all four as they were. The inode's ctime
    cannot be set back, so a file whose ctime is not the one stored is read again (a
    chmod or a new hard link too: hashing costs far less than the wrong picture's tags).
    """
    if row.ctime_ns is not None and stat.ctime_ns != 0 and row.ctime_ns != stat.ctime_ns:
        return False
    same = (row.size, row.mtime_ns, row.inode, row.device) == (
        stat.size,
        stat.mtime_ns,
        stat.inode,
        stat.device,
    )
    settled = row.content_id is not None or (
        row.error is not None and row.kind == Kind.PICTURE.value
    )
    return same and settled and row.mtime_ns + RACY_NS < row.checked_ns


def is_moved(row: FileRow, stat: Stat) -> bool:
    """Whether a new path with `row`'s device, inode, size and mtime (`row`'s path gone)
    is `row`'s file moved, without reading it.

    That stat is not proof: a file system hands a freed inode to the next file made, and
    an archive gives all its files one mtime, so a set unpacked over a deleted one looks
    moved. But an inode made (or relinked, or renamed itself) since `row` was read has a
    ctime after that read; one unchanged since well before it (coarse clocks: RACY_NS) is
    the same file, as in a renamed folder. Any other is read, and is a move only when its
    bytes are `row`'s (`count_read`): hashing costs far less than tagging the wrong picture.
    """
    return stat.ctime_ns != 0 and stat.ctime_ns + RACY_NS < row.checked_ns


def count_read(counts: Counts, job: ReadJob, content_id: int) -> None:
    """Count a file read as unchanged, changed, new, or moved (a vanished file's bytes
    under a new name: then that file does not count as removed)."""
    if job.known is not None:
        counts.unchanged += job.known.content_id == content_id
        counts.changed += job.known.content_id != content_id
    elif job.was is not None and job.was.content_id == content_id:
        counts.moved += 1
    else:
        counts.new += 1
        counts.removed += job.was is not None


def uncount_read(counts: Counts, job: ReadJob, content_id: int) -> None:
    """Take back `count_read` (and the hashing) for a file put back unread: it is
    counted when it is read again. A vanished file it was taken for stays removed."""
    counts.hashed -= 1
    if job.known is not None:
        counts.unchanged -= job.known.content_id == content_id
        counts.changed -= job.known.content_id != content_id
    elif job.was is not None and job.was.content_id == content_id:
        counts.moved -= 1
        counts.removed += 1
    else:
        counts.new -= 1


def record_looked(
    conn: Connection, looked: list[tuple[ReadJob, Looked]], counts: Counts
) -> list[int]:
    """Record a group of files hashed by the decoders: their contents, then their rows
    with the stat seen at the read; counted. Their content ids, in order."""
    if not looked:
        return []
    ids = add_contents(conn, [(s.xxh128, s.sha1, s.size, s.width, s.height) for _, s in looked])
    rows = []
    for job, seen in looked:
        content_id = ids[seen.xxh128]
        job.stat = stat = Stat(seen.size, seen.mtime_ns, seen.inode, seen.device, seen.ctime_ns)
        job.content_id = content_id
        rows.append((job.path, job.root_id, stat.size, stat.mtime_ns, stat.inode, stat.device,
                     content_id, job.read_ns, None, None, seen.ctime_ns))  # fmt: skip
        count_read(counts, job, content_id)
    counts.hashed += len(looked)
    put_files(conn, rows)
    return [ids[seen.xxh128] for _, seen in looked]
