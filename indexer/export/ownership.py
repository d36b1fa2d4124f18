"""Which sidecar files dtindex wrote, so an export never replaces a file of the user's.

A caption `notes.txt` for a picture `notes.png` would otherwise overwrite the user's own
notes. Captions and Hydrus files hold nothing to merge, so they are replaced whole; an
existing file is replaced only where it still holds bytes dtindex wrote there, as listed
in a hidden manifest in its folder (`.dtindex-sidecars`). A file there before, or one the
user changed since (a corrected caption), is the user's: left alone and reported, unless
the user asks for such files to be replaced (`--replace-existing`). A file that already
holds exactly what the export writes is taken as dtindex's. XMP sidecars need none of
this: they are merged, and keep everything the user wrote.

Each file is listed before it is renamed into place, so an export stopped at any moment
(SIGKILL included) never leaves a file of its own unlisted; a listed file that was never
written is harmless, as ownership goes by content. A manifest line is the SHA-256 of the
bytes written (hex), a tab, and the file's name (`\\` and line feeds escaped); it is only
ever appended to. A line holding a name alone was written by dtindex before it kept
hashes: that file is dtindex's until dtindex next writes it, as it was then.

A picture no tag of which passes any more has its file of dtindex's removed (`discard`):
one that still holds bytes dtindex wrote there; a file the user wrote or changed stays.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from indexer.errors import SidecarError
from indexer.export.writing import REMOVE, Outcome, Removal, update_file

MANIFEST = b".dtindex-sidecars"
_HASHED = re.compile(rb"([0-9a-f]{64})\t(.*)", re.DOTALL)


@dataclass
class Listing:
    """One folder's manifest as read: the hashes listed for each name, and the names
    listed without one."""

    hashes: dict[bytes, set[bytes]] = field(default_factory=dict)
    bare: set[bytes] = field(default_factory=set)
    ends_a_line: bool = True  # a line cut short (a power cut) is not continued


class Ownership:
    """Guards a run's writes of whole files; `save` syncs the manifests it added to (call
    it at the end, also on errors)."""

    def __init__(self, replace_existing: bool = False) -> None:
        self.replace_existing = replace_existing
        self._listings: dict[bytes, Listing] = {}
        self._touched: set[bytes] = set()

    def replace(self, target: bytes, data: bytes) -> Outcome:
        """Make `target` hold `data`, as `update_file` does; SidecarError, touching
        nothing, where it is a file of the user's. Whose the file is is judged on the bytes
        read under the folder's lock right before the rename, so a user's correction saved
        during the export is the user's too."""
        folder, name = os.path.split(target)
        listing = self._listing(folder)
        digest = _digest(data)

        def change(current: bytes | None) -> bytes | None:
            if current == data:  # nothing to replace; listed, so it stays dtindex's
                if digest not in listing.hashes.get(name, ()):
                    self._list(folder, name, digest, durable=False)
                return None
            if current is not None and not self.replace_existing:
                _check(listing, name, current)
            if digest not in listing.hashes.get(name, ()):
                self._list(folder, name, digest, durable=current is not None)
            return data

        return update_file(target, change)

    def discard(self, target: bytes) -> Outcome:
        """Remove `target` where it holds bytes dtindex wrote there, by their hash (a file
        listed by name alone may have been corrected since: it stays, as do the user's)."""
        folder, name = os.path.split(target)
        listing = self._listing(folder)

        def change(current: bytes | None) -> Removal | None:
            mine = current is not None and _digest(current) in listing.hashes.get(name, ())
            return REMOVE if mine else None

        return update_file(target, change)

    def save(self) -> None:
        """Sync the manifests this run added to, so a power cut keeps them too."""
        for folder in self._touched:
            try:
                fd = os.open(os.path.join(folder or b".", MANIFEST), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
        self._touched.clear()

    def _list(self, folder: bytes, name: bytes, digest: bytes, durable: bool) -> None:
        """Append `name`'s line before its file is renamed into place; synced where an
        existing file is replaced (whose new bytes `update_file` syncs too)."""
        listing = self._listing(folder)
        line = digest + b"\t" + name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n") + b"\n"
        path = os.path.join(folder or b".", MANIFEST)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, (b"" if listing.ends_a_line else b"\n") + line)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        listing.ends_a_line = True
        listing.hashes.setdefault(name, set()).add(digest)
        self._touched.add(folder)

    def _listing(self, folder: bytes) -> Listing:
        if folder not in self._listings:
            self._listings[folder] = _read(os.path.join(folder or b".", MANIFEST))
        return self._listings[folder]


def _check(listing: Listing, name: bytes, current: bytes) -> None:
    """Raise where the file `name`, holding `current`, is the user's."""
    hashes = listing.hashes.get(name)
    if hashes is None and name in listing.bare:
        return  # listed before hashes were kept
    if hashes is None:
        raise SidecarError(
            "a file dtindex did not write is there; move it away, or pass "
            "--replace-existing to replace such files"
        )
    if _digest(current) not in hashes:
        raise SidecarError(
            "changed since dtindex wrote it, so it is the user's now; move it away, or "
            "pass --replace-existing to replace such files"
        )


def _read(path: bytes) -> Listing:
    listing = Listing()
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError:
        return listing
    listing.ends_a_line = not text or text.endswith(b"\n")
    for line in text.split(b"\n"):
        hashed = _HASHED.fullmatch(line)
        if hashed:
            name = re.sub(rb"\\(.)", _unescape, hashed[2])
            listing.hashes.setdefault(name, set()).add(hashed[1])
        elif line:
            listing.bare.add(line)
    return listing


def _unescape(escape: re.Match[bytes]) -> bytes:
    return b"\n" if escape[1] == b"n" else escape[1]


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()
