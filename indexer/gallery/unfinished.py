"""Files perhaps still being written: a failure watch looks at again before reporting it.

A download that pauses for longer than `settle` is handed on half written, and its first
part fails to decode ("image file is truncated"). That failure is the picture's own
(`Kind.PICTURE`), so it would be recorded as final and warned about, for a file that is
not broken. A watch therefore puts back a file that failed that way when it was read
within the grace window after its last write (`grace`: several times `settle`, never
under `GRACE_S`), and looks at it again once the window has passed, or sooner on its
next event; one still truncated then, its size and mtime unchanged, is reported and
recorded as before. A file put back is left unread (`unread`: no failure, its row,
claims and counts as before the read), so it is counted once, when it is decided.

Failures are not told apart by their text: each format and plugin words truncation its
own way, and a first part of a few bytes is not even identified as a picture. A broken
picture written just now is only reported `grace` seconds later. The test is the file's
own mtime, not when its event came: a broken picture moved in, or copied with its mtime
kept, is reported at once. A plain `scan` puts nothing back: a file it read half written
is read again by the next scan, as its size and mtime will have changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence

from indexer.errors import Failure, Kind
from indexer.gallery.jobs import Counts, ReadJob, uncount_read
from indexer.store.claims import release_pairs
from indexer.store.records import Records, Stat

log = logging.getLogger("dtindex")

GRACE_S = 5.0  # the least pause in a download (a stalled connection) not taken for its end
GRACE_SETTLES = 4  # and the least in settle periods, for a watch told files settle slowly


class Unfinished:
    """The files a watch put back, and when to look at each again."""

    def __init__(self, settle: float) -> None:
        self.grace = max(GRACE_S, GRACE_SETTLES * settle)
        self._due: dict[bytes, float] = {}  # path: when to look again (time.monotonic)
        self._put_back: dict[bytes, tuple[int, int]] = {}  # path: its size and mtime then

    def put_back(self, job: ReadJob, failure: Failure) -> bool:
        """Whether `failure` may be `job`'s file still being written: then it is not
        recorded, and `due` gives the path again once the grace window has passed.

        What counts is how long the file had been still when it was read (its stat then),
        not when it failed: a decode that waited on a busy machine changes nothing."""
        if failure.kind is not Kind.PICTURE:
            return False
        path, stat = job.path, job.stat
        signature = (stat.size, stat.mtime_ns)
        still = (job.read_ns - stat.mtime_ns) / 1e9  # negative: a clock ahead of ours
        if abs(still) >= self.grace or self._put_back.get(path) == signature:
            self._put_back.pop(path, None)
            return False  # written long before, or unchanged over a whole grace window
        self._put_back[path] = signature
        self._due[path] = time.monotonic() + self.grace
        log.debug(
            "%s: %s, read %.1f s after it was written: perhaps not whole yet; looking again "
            "in %g s", os.fsdecode(path), failure.reason, still, self.grace,
        )  # fmt: skip
        return True

    def heard(self, paths: Iterable[bytes]) -> None:
        """These paths settled after a new event: they are read now, not at their time."""
        for path in paths:
            self._due.pop(path, None)
            self._put_back.pop(path, None)

    def waiting(self) -> set[bytes]:
        """The paths put back, to be looked at again."""
        return set(self._due)

    def due(self) -> list[bytes]:
        """The paths put back whose grace window has passed."""
        now = time.monotonic()
        paths = [path for path, when in self._due.items() if when <= now]
        for path in paths:
            del self._due[path]
        return paths


def unread(index: Records, job: ReadJob, version_ids: Sequence[int], counts: Counts) -> None:
    """As if `job`'s file had not been read (`Indexer`, for a file put back): its claims
    given up, its row and counts as before, so that the next look at it decides."""
    content_id = job.content_id
    assert content_id is not None  # recorded before it was given to decoding
    uncount_read(counts, job, content_id)
    row = job.known
    with index.batch():  # one transaction: the claims and the row go back together
        release_pairs(index, [(version_id, content_id) for version_id in version_ids])
        if row is None:
            index.delete_path(job.path)
            return
        stat = Stat(row.size, row.mtime_ns, row.inode, row.device, row.ctime_ns or 0)
        kind = None if row.kind is None else Kind(row.kind)
        index.put_file(row.path, row.root_id, stat, row.content_id, row.checked_ns, row.error, kind)
