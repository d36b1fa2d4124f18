"""Collecting file-system events until the files they name have settled.

A file being written is not final: a path is handed on only after no event came for it
for `settle` seconds and its size and mtime did not change over that time (a close after
writing shortens the wait). Folder creations and deletions are kept (a folder moved in
brings files without events of their own); folder modifications are noise and dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from watchdog.events import (
    DirModifiedEvent,
    FileClosedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from indexer.imaging.sniff import Pictures

log = logging.getLogger("dtindex")


@dataclass
class _Pending:
    last_event: float
    signature: tuple[int, int] | None


def _signature(path: bytes) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns)


class Collector(FileSystemEventHandler):
    """watchdog handler: remembers changed paths; `ready` gives those that settled."""

    def __init__(self, extensions: frozenset[str], settle: float) -> None:
        self.pictures = Pictures(extensions)
        self.settle = settle
        self._pending: dict[bytes, _Pending] = {}
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    def _wanted(self, path: bytes, is_dir: bool) -> bool:
        """Folders, and files whose name does not rule them out: the scan of the settled
        paths sniffs those without a picture's name."""
        return is_dir or self.pictures.by_name(os.path.basename(path)) is not False

    def _note(self, raw: str | bytes, is_dir: bool, closed: bool = False) -> None:
        path = os.fsencode(raw)
        if not self._wanted(path, is_dir):
            return
        now = time.monotonic()
        with self._lock:
            entry = self._pending.get(path)
            signature = _signature(path)
            if entry is None:
                entry = self._pending[path] = _Pending(now, signature)
            entry.last_event = now - self.settle if closed else now
            entry.signature = signature
        log.debug("event: %s", os.fsdecode(path))
        self.wakeup.set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirModifiedEvent) or event.event_type in ("opened", "closed_no_write"):
            return
        self._note(event.src_path, event.is_directory, isinstance(event, FileClosedEvent))
        dest = getattr(event, "dest_path", "")
        if dest:
            self._note(dest, event.is_directory)

    def ready(self) -> list[bytes]:
        """Paths whose last event is `settle` old and whose size and mtime held still."""
        now = time.monotonic()
        done: list[bytes] = []
        with self._lock:
            for path, entry in list(self._pending.items()):
                if now - entry.last_event < self.settle:
                    continue
                signature = _signature(path)
                if signature == entry.signature:
                    done.append(path)
                    del self._pending[path]
                else:  # still being written: wait another period
                    entry.signature, entry.last_event = signature, now
        return done

    def waiting(self) -> set[bytes]:
        """The paths heard that have not settled yet."""
        with self._lock:
            return set(self._pending)
