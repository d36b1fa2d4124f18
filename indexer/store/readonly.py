"""An index that cannot be written: how reading commands open it, and why writers cannot.

Where the index and its folder can be written, readers connect as writers do (the last
connection to close tidies the `-wal` and `-shm` files away; a read-only one cannot).
Where only the file cannot, they open it read-only (`mode=ro`). Where its folder cannot
be written either (a read-only mount, someone else's folder), SQLite could not create
the `-shm` file a WAL database is read through, so the file is opened `immutable`: read
as it is, with no locks. Nobody can write it there, so nothing changes under the reader;
only changes left in a `-wal` file beside it (a writer that died) go unread, and a
warning says so. Writers (`scan`, `watch`, `forget`, `prune`) are refused up front,
naming the file and the reason, before SQLite's "unable to open database file".
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from indexer.errors import StoreError

log = logging.getLogger("dtindex")


def writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def reader_uri(path: Path) -> str:
    """The read-only SQLite URI of the index at `path`: `mode=ro`, and `immutable` where
    its folder cannot be written."""
    uri = f"{path.absolute().as_uri()}?mode=ro"
    if os.access(path.parent, os.W_OK):
        return uri
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size:
        log.warning(
            "%s: the last changes are in %s, which cannot be applied in a read-only folder; "
            "reading the index without them",
            path,
            wal.name,
        )
    return uri + "&immutable=1"


def _why(target: Path) -> str:
    try:
        read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "on a read-only file system" if read_only else "no permission to write it"


def check_writable(path: Path) -> None:
    """Refuse an index a writer could not write: the file, or the folder SQLite keeps
    its -wal and -shm files in."""
    if path.exists() and not os.access(path, os.W_OK):
        where = f"the index is read-only ({_why(path)})"
    elif not os.access(path.parent, os.W_OK):
        where = f"its folder {path.parent} is read-only ({_why(path.parent)})"
    else:
        return
    raise StoreError(
        f"{path}: {where}; scan, watch, forget and prune write the index and its -wal and "
        "-shm files beside it. export, search, show, status and models can still read it"
    )
