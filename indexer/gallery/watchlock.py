"""One `watch` per SQLite index: two watchers of one database would each rescan and follow
the same roots, doubling the work for nothing, so the second refuses to start."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from indexer.errors import UsageError
from indexer.store.location import Location


@contextmanager
def watch_lock(db: Location) -> Iterator[None]:
    """One `watch` per SQLite index; `scan` may still run beside it. An index on a server
    is shared by machines that may each watch their own folders (claims keep them from
    tagging a picture twice), so it has no such lock."""
    if not isinstance(db, Path):
        yield
        return

    path = db.with_name(db.name + ".watch.lock")
    handle: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the daemon's life
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise UsageError(
                f"{db}: another dtindex watch is running on this index ({owner})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
