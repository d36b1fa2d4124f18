"""Which sidecar files dtindex wrote, so an export never replaces a file of the user's.

A caption `notes.txt` for a picture `notes.png` would otherwise overwrite the user's own
notes. Captions and Hydrus files hold nothing to merge, so they are replaced whole; an
existing file is replaced only where dtindex wrote it, as listed in a hidden manifest in
its folder (`.dtindex-sidecars`, a name per line). A file there before is left alone and
reported, unless the user asks for it to be replaced (`--replace-existing`). XMP
sidecars need none of this: they are merged, and keep everything the user wrote.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict

from indexer.errors import SidecarError

MANIFEST = b".dtindex-sidecars"


class Ownership:
    """Guards a run's writes; `save` records what it wrote (call it, also on errors)."""

    def __init__(self, replace_existing: bool = False) -> None:
        self.replace_existing = replace_existing
        self._known: dict[bytes, set[bytes]] = {}
        self._written: dict[bytes, set[bytes]] = defaultdict(set)

    def check(self, target: bytes) -> None:
        """Raise where `target` is a file dtindex did not write (and may not replace)."""
        folder, name = os.path.split(target)
        if self.replace_existing or not os.path.lexists(target):
            return
        if name not in self._names(folder):
            raise SidecarError(
                "a file dtindex did not write is there; move it away, or pass "
                "--replace-existing to replace such files"
            )

    def wrote(self, target: bytes) -> None:
        folder, name = os.path.split(target)
        if name not in self._names(folder):
            self._written[folder].add(name)

    def save(self) -> None:
        """Add this run's new files to each folder's manifest."""
        for folder, names in self._written.items():
            path = os.path.join(folder or b".", MANIFEST)
            with contextlib.suppress(OSError), open(path, "ab") as handle:
                handle.write(b"".join(n + b"\n" for n in sorted(names)))
        self._written.clear()

    def _names(self, folder: bytes) -> set[bytes]:
        if folder not in self._known:
            try:
                with open(os.path.join(folder or b".", MANIFEST), "rb") as handle:
                    self._known[folder] = set(handle.read().splitlines())
            except OSError:
                self._known[folder] = set()
        return self._known[folder] | self._written.get(folder, set())
