"""Walking gallery roots with `os.scandir`: picture files and their stat.

A file is a picture by its name, else by its first bytes (`imaging.sniff`); only files
the index does not hold yet are sniffed, so a rescan reads nothing. Paths are bytes all
the way, so any name the file system holds round-trips. Folders that cannot be listed
are reported, and the scan keeps the index's files under them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections import deque
from collections.abc import Container, Iterator
from dataclasses import dataclass, field

from indexer.config import ScanConfig
from indexer.imaging.sniff import Pictures
from indexer.store.records import Stat

log = logging.getLogger("dtindex")


def _first_visit(folder: bytes, seen: set[tuple[int, int]]) -> bool:
    """Record a folder by (device, inode); False if it was walked already (a loop)."""
    try:
        info = os.stat(folder)
    except OSError:
        return True  # listing it will fail and report it
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True


@dataclass
class Walk:
    """One root's walk: files found, and folders that could not be listed."""

    root: bytes
    settings: ScanConfig
    unreadable: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pictures = Pictures(self.settings.extensions)
        self._globs = [os.fsencode(g) for g in self.settings.exclude]

    def _excluded(self, path: bytes, name: bytes) -> bool:
        rel = os.path.relpath(path, self.root)
        return any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g) for g in self._globs)

    def excluded_path(self, path: bytes) -> bool:
        """Whether a path below the root, or any folder on the way to it, is excluded."""
        if not self._globs:
            return False
        rel = os.path.relpath(path, self.root).split(b"/")
        return any(
            self._excluded(os.path.join(self.root, *rel[: i + 1]), rel[i]) for i in range(len(rel))
        )

    def wanted(self, path: bytes, name: bytes, known: Container[bytes]) -> bool:
        """A regular file is a picture by its name, else as the index knows it (sniffed
        when it was new), else by its first bytes."""
        named = self.pictures.by_name(name)
        if named is not None:
            return named
        return path in known or self.pictures.by_content(path)

    def files(
        self, start: bytes | None = None, known: Container[bytes] = ()
    ) -> Iterator[tuple[bytes, Stat]]:
        """Pictures under `start` (a folder below the root; default the root) and their
        stat; `known` holds the paths the index has (not sniffed again).

        Excludes always match paths relative to the root, so a folder moved into a
        watched root is filtered as a scan of the whole root would filter it. Folders
        are walked before the symlinks to folders (with `follow_symlinks`), so a file is
        named by its real path where it has one; a folder already walked, the root and
        the folders above `start` included, is not walked again through a link, which
        cuts loops (`sub/up -> ..`).
        """
        follow = self.settings.follow_symlinks
        seen = self._above(start) if follow and start else set()
        stack, links = [start or self.root], deque[bytes]()
        while stack or links:
            folder = stack.pop() if stack else links.popleft()
            if follow and not _first_visit(folder, seen):
                continue
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                log.warning("%s: cannot list folder: %s", os.fsdecode(folder), exc.strerror)
                self.unreadable.append(folder)
                continue
            entries.sort(key=lambda e: e.name)
            for entry in entries:
                if self._globs and self._excluded(entry.path, entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_symlink() and entry.is_dir():
                        if follow:
                            links.append(entry.path)
                    elif entry.is_file() and self.wanted(entry.path, entry.name, known):
                        yield entry.path, Stat.of(entry.stat())
                except OSError:
                    continue  # vanished or a dangling link between listing and stat

    def _above(self, start: bytes) -> set[tuple[int, int]]:
        """The root and the folders between it and `start`: a full walk went through them."""
        seen: set[tuple[int, int]] = set()
        folder = os.path.dirname(start)
        while len(folder) >= len(self.root) and folder.startswith(self.root):
            _first_visit(folder, seen)
            if folder == self.root:
                break
            folder = os.path.dirname(folder)
        return seen

    def covers(self, path: bytes) -> bool:
        """False for files under a folder this walk could not list: they may still exist."""
        return not any(path.startswith(folder + os.sep.encode()) for folder in self.unreadable)
