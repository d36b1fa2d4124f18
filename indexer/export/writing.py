"""How a sidecar is replaced: never half-written, never over a change dtindex did not see.

Three things can go wrong when a file of the user's is rewritten, and each has its guard:

- a reader or a crash finding half of it: the new bytes go to a temporary file in the same
  folder, synced, and renamed over the target;
- another program saving the file between dtindex's read and its rename (digiKam or
  darktable writing a rating into `a.jpg.xmp`): right before the rename the file is read
  again and compared, by its bytes and by its identity (device, inode, size, times); where
  it changed, the new bytes are made again from what is there now;
- two dtindex exports writing the same sidecars (two models, from two cron jobs): the
  writers of one folder take turns (`folder_lock`), so each reads what the other wrote.

What is left is the moment between that last comparison and the rename: a program that
does not take dtindex's lock and saves in that microsecond is not seen. A file that goes
(`REMOVE`: one dtindex made and nothing is left in) goes under the same guards.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Collection, Iterator
from enum import Enum, IntEnum
from typing import NamedTuple

from indexer.errors import SidecarError

LOCK = b".dtindex-sidecars.lock"
ATTEMPTS = 5  # reads of a sidecar another program keeps changing, before giving up on it


class Outcome(IntEnum):
    """What `update_file` did; false only where the file was left as it was."""

    UNCHANGED = 0
    WRITTEN = 1
    REMOVED = 2


class Removal(Enum):
    REMOVE = "remove"


REMOVE = Removal.REMOVE  # what a change returns for "the file goes"


class Seen(NamedTuple):
    data: bytes
    identity: tuple[int, ...]  # device, inode, size, mtime, ctime
    mode: int


def update_file(target: bytes, change: Callable[[bytes | None], bytes | Removal | None]) -> Outcome:
    """Make `target` hold what `change` makes of its bytes (None: there is no file), or
    remove it where that is `REMOVE`; UNCHANGED, touching nothing, where that is None or
    what the file already holds.

    `change` may be called more than once: again each time the file changed under it. A
    file already up to date is found without the lock, so an export that has nothing to
    write needs no write access. Raises SidecarError where the file changed `ATTEMPTS`
    times in a row, OSError where it cannot be read or written, and what `change` raises.
    A symbolic link is followed: the file it points to is replaced, not the link; and
    neither is removed, since the link is the user's.
    """
    linked = os.path.islink(target)
    target = os.path.realpath(target) if linked else target
    seen = _read(target)
    wanted = change(seen.data if seen else None)
    if _same(wanted, seen, linked):
        return Outcome.UNCHANGED
    with folder_lock(os.path.dirname(target) or b"."):
        for _ in range(ATTEMPTS):
            now = _read(target)
            if now != seen:  # another writer came first: made again from what it wrote
                seen, wanted = now, change(now.data if now else None)
                if _same(wanted, seen, linked):
                    return Outcome.UNCHANGED
            if wanted is REMOVE:
                if _remove_unless_changed(target, seen):
                    return Outcome.REMOVED
            elif wanted is not None and _replace_unless_changed(target, wanted, seen):
                return Outcome.WRITTEN
    raise SidecarError(
        f"changed by another program while it was merged, {ATTEMPTS} times in a row; "
        "left as that program wrote it"
    )


def remove_held(
    target: bytes, mine: Callable[[bytes], bool], keep: Collection[tuple[int, int]] = ()
) -> bool:
    """Remove `target` where `mine` says so of its bytes, the caller holding the folder's
    lock (`folder_lock`); whether it was removed. A symbolic link is the user's; a file
    that is one of `keep` (device, inode: a file still needed under another name, a
    symbolic link's target) stays; and a file changed between the read and the unlink
    (by a program that takes no lock) is kept as it is now."""
    if os.path.islink(target):
        return False
    seen = _read(target)
    if seen is None or seen.identity[:2] in keep or not mine(seen.data):
        return False
    return _remove_unless_changed(target, seen)


def identity(path: bytes) -> tuple[int, int] | None:
    """The file `path` names, following links (device, inode); None where there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def holds(target: bytes, data: bytes) -> bool:
    """Whether the file `target` (a link followed) holds `data` now."""
    seen = _read(target)
    return seen is not None and seen.data == data


def linked_in(folder: bytes) -> set[tuple[int, int]]:
    """The files the symbolic links in `folder` point to (device, inode): deduplicating
    tools (`rdfind -makesymlinks`, `jdupes -l`) link identical captions, so removing
    one such file empties the link the user kept."""
    with os.scandir(folder or b".") as entries:
        links = [entry.path for entry in entries if entry.is_symlink()]
    return {found for found in map(identity, links) if found is not None}


def _same(wanted: bytes | Removal | None, seen: Seen | None, linked: bool) -> bool:
    """Whether `wanted` leaves the file `seen` as it is."""
    if wanted is REMOVE:
        return seen is None or linked
    return wanted is None or (seen is not None and wanted == seen.data)


@contextlib.contextmanager
def folder_lock(folder: bytes) -> Iterator[None]:
    """Hold the lock of dtindex's writers in `folder` (an exclusive flock).

    The lock is a hidden file of its own, `.dtindex-sidecars.lock`: a sidecar itself
    cannot carry it, since each write renames a new file over it, and a folder's own
    descriptor cannot be flock'ed on NFS, where galleries often live. It is taken a
    sidecar at a time, so two exports interleave rather than one waiting for the other's
    whole run, and it is removed on release, so it is seen in the user's folder only
    while a sidecar is being written there (or after a SIGKILL, until the next export). A
    writer that got the lock of a file since removed tries again with the new one.
    Where the file system has no locks, the writers go on without (the re-read before
    each rename still catches all but a microsecond's window).
    """
    path = os.path.join(folder, LOCK)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no locks on this file system (ENOLCK, EOPNOTSUPP): unlocked
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            yield
            return
        except BaseException:
            os.close(fd)
            raise
        if _same_file(path, fd):
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _same_file(path: bytes, fd: int) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _read(target: bytes) -> Seen | None:
    try:
        with open(target, "rb") as handle:
            data = handle.read()
            status = os.fstat(handle.fileno())
    except FileNotFoundError:
        return None
    identity = (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )
    return Seen(data, identity, stat.S_IMODE(status.st_mode))


def _replace_unless_changed(target: bytes, data: bytes, seen: Seen | None) -> bool:
    """Rename a new file holding `data` over `target`, unless `target` is no longer what
    was `seen`; whether it was replaced.

    Replacing an existing file keeps its mode and syncs the new bytes first, so a power
    cut cannot leave the user's sidecar empty.
    """
    temporary, fd = _create_beside(target)
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            if seen is not None:
                os.fchmod(handle.fileno(), seen.mode)
                handle.flush()
                os.fsync(handle.fileno())
        if _read(target) != seen:
            os.unlink(temporary)
            return False
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def _remove_unless_changed(target: bytes, seen: Seen | None) -> bool:
    """Remove `target` unless it is no longer what was `seen`; whether it was removed."""
    if seen is None or _read(target) != seen:
        return False
    os.unlink(target)
    return True


def _create_beside(target: bytes) -> tuple[bytes, int]:
    """A new hidden file next to `target`, created with the umask's mode (not 0600).

    Its name is short and does not hold the target's: a picture's name may take nearly
    all of the 255 bytes a file name may have, and its sidecar's name the rest."""
    folder = os.path.dirname(target)
    while True:
        temporary = os.path.join(folder, b".dtindex-%s.tmp" % secrets.token_hex(6).encode())
        try:
            return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
