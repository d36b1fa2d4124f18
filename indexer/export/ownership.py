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
bytes written (hex), the format that wrote them (`captions`, `hydrus`), where it was
exported (`beside` the pictures, or under `out`), and the file's name, tab-separated
(`\\` and line feeds escaped in the name); the manifest is only ever appended to.

The format and place are kept because captions and Hydrus sidecars share a name where two
pictures share a stem (`dup.png.txt`), and a beside export and an `--out` mirror inside a
root can (`g/sub/a.txt`, of `g/sub/a.png` and of `g/a.png`). A file whose bytes dtindex
wrote only as another format, or only to the other place, is reported and not replaced
(unless `--replace-existing`): a Hydrus import would read a caption as one tag, and two
exports would replace each other's file for ever.

Lines of an older dtindex are read as before: one without a format and place (the hash
and the name) was written as some format, so such bytes are dtindex's to replace in any;
one holding a name alone, before hashes were kept: that file is dtindex's until dtindex
next writes it, as it was then. An older dtindex reads a line with a format as naming a
file `captions<TAB>beside<TAB>name`, which is not there: it takes the file as the user's
(so it replaces and removes nothing of this dtindex's). Conversely, a line of an older
dtindex whose name began with a word, a tab and `beside` or `out` and a tab would be
misread; no picture is so named in practice.

A picture no tag of which passes any more has its file of dtindex's removed (`discard`):
one that still holds bytes dtindex wrote there as this format to this place (or, by an
older line, as some format) and never otherwise, by the manifest read again under the
folder's lock; a file the user wrote or changed, and one a symbolic link points to, stay.
Files left over beside pictures that went (`leftovers`) are judged by `left_over`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import NamedTuple

from indexer.errors import SidecarError
from indexer.export.writing import (
    ATTEMPTS,
    Outcome,
    folder_lock,
    holds,
    identity,
    linked_in,
    remove_held,
    update_file,
)

MANIFEST = b".dtindex-sidecars"
_LINE = re.compile(rb"([0-9a-f]{64})\t(?:([a-z][a-z0-9-]*)\t(beside|out)\t)?(.*)", re.DOTALL)
BESIDE, OUT = b"beside", b"out"
NOUNS = {b"captions": "a caption file", b"hydrus": "a Hydrus sidecar"}


class Writer(NamedTuple):
    """What wrote a file: a format (`captions`) exported `beside` the pictures or under
    `out`; both empty on a line of an older dtindex (`OLDER`)."""

    fmt: bytes
    place: bytes


OLDER = Writer(b"", b"")


@dataclass
class Listing:
    """One folder's manifest as read: what wrote each hash listed for each name, and the
    names listed without one."""

    hashes: dict[bytes, dict[bytes, set[Writer]]] = field(default_factory=dict)
    bare: set[bytes] = field(default_factory=set)
    ends_a_line: bool = True  # a line cut short (a power cut) is not continued

    def writers(self, name: bytes, data: bytes) -> set[Writer]:
        """What wrote `data` into the file `name`, by the lines read."""
        return self.hashes.get(name, {}).get(_digest(data), set())

    def has(self, name: bytes, digest: bytes, writer: Writer) -> bool:
        return writer in self.hashes.get(name, {}).get(digest, ())

    def add(self, name: bytes, digest: bytes, writer: Writer) -> None:
        self.hashes.setdefault(name, {}).setdefault(digest, set()).add(writer)


class Ownership:
    """Guards a run's writes of whole files in one format (`fmt`, written beside the
    pictures or not); `save` syncs the manifests it added to (call it at the end, also
    on errors)."""

    def __init__(self, fmt: str, beside: bool, replace_existing: bool = False) -> None:
        self.writer = Writer(fmt.encode(), BESIDE if beside else OUT)
        self.replace_existing = replace_existing
        self._listings: dict[bytes, Listing] = {}
        self._touched: set[bytes] = set()
        # The files this run keeps, by identity: never discarded (`export.files` sets it).
        self.needed: Callable[[], Collection[tuple[int, int]]] = frozenset

    def replace(self, target: bytes, data: bytes) -> Outcome:
        """Make `target` hold `data`, as `update_file` does; SidecarError, touching
        nothing, where it is a file of the user's, of another format's, or exported to the
        other place. Whose the file is is judged on the bytes read under the folder's
        lock right before the rename, so a user's correction saved during the export is
        the user's too. A file found holding `data` is listed under the lock, read again
        there: a removal of leftovers (`leftovers`) sees the line, or it is written anew."""
        folder, name = os.path.split(target)
        digest = _digest(data)
        for _ in range(ATTEMPTS):
            outcome = update_file(target, functools.partial(self._change, target, data))
            if outcome or self._listing(folder).has(name, digest, self.writer):
                return outcome
            with folder_lock(folder or b"."):
                if holds(target, data):
                    self._list(folder, name, digest, durable=False)
                    return outcome
        raise SidecarError(
            f"changed by another program while it was written, {ATTEMPTS} times in a row; "
            "left as that program wrote it"
        )

    def _change(self, target: bytes, data: bytes, current: bytes | None) -> bytes | None:
        """What `replace` makes of `target` holding `current`: None where that is `data`
        (the caller lists it), else `data`, listed before the rename."""
        if current == data:
            return None
        folder, name = os.path.split(target)
        listing = self._listing(folder)
        if current is not None and not self.replace_existing:
            self._check(listing, name, current)
        digest = _digest(data)
        if not listing.has(name, digest, self.writer):
            # listed before the rename; synced where an existing file is replaced
            self._list(folder, name, digest, durable=current is not None)
        return data

    def discard(self, target: bytes) -> Outcome:
        """Remove `target` where it holds bytes dtindex wrote there as this format and
        to this place, by their hash, and never otherwise (a file listed by name alone
        may have been corrected since: it stays, as do the user's). Judged by the manifest
        read again under the folder's lock, so another export's line written meanwhile
        counts; a file a symbolic link in the folder points to stays."""
        folder, name = os.path.split(target)
        if os.path.islink(target):
            return Outcome.UNCHANGED  # the link is the user's
        try:
            with open(target, "rb") as handle:
                current = handle.read()
        except FileNotFoundError:
            return Outcome.UNCHANGED
        if not self._mine(self._listing(folder), name, current):
            return Outcome.UNCHANGED  # by the lines read before: it stays
        with folder_lock(folder or b"."):
            listing = self._listings[folder] = _read(os.path.join(folder or b".", MANIFEST))
            mine = functools.partial(self._mine, listing, name)
            needed = identity(target) in self.needed()  # kept under another name
            removed = not needed and remove_held(target, mine, linked_in(folder))
        return Outcome.REMOVED if removed else Outcome.UNCHANGED

    def _mine(self, listing: Listing, name: bytes, data: bytes) -> bool:
        """Whether `data` in `name` was written as this format to this place (or by an
        older dtindex, as some format), by `listing`, and never otherwise."""
        writers = listing.writers(name, data)
        return bool(writers) and writers <= {self.writer, OLDER}

    def candidates(self, folder: bytes) -> set[bytes]:
        """The names in `folder` this format wrote beside the pictures, by the lines read
        so far: the files that may be left over (`left_over` judges them)."""
        listing = self._listing(folder)
        return {
            name
            for name, digests in listing.hashes.items()
            if any(self.writer in writers for writers in digests.values())
        }

    def left_over(self, folder: bytes) -> Callable[[bytes, bytes], bool]:
        """Whether the file `name` in `folder`, holding `data`, may go as a leftover of
        this format's: by the manifest as it is now (read again: call it under the
        folder's lock, so another export's lines are in), every line listing those bytes
        for that name says this format wrote them beside the pictures; a file listed by an
        older dtindex, by another format, or from an export under `--out` stays."""
        listing = _read(os.path.join(folder or b".", MANIFEST))

        def judge(name: bytes, data: bytes) -> bool:
            return name not in listing.bare and listing.writers(name, data) == {self.writer}

        return judge

    def save(self) -> None:
        """Sync the manifests this run added to, so a power cut keeps them too."""
        for folder in self._touched:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(folder or b".", MANIFEST), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._touched.clear()

    def _check(self, listing: Listing, name: bytes, current: bytes) -> None:
        """Raise where the file `name`, holding `current`, is the user's, or another
        format's."""
        if name not in listing.hashes and name in listing.bare:
            return  # listed before hashes were kept
        if name not in listing.hashes:
            raise SidecarError(
                "a file dtindex did not write is there; move it away, or pass "
                "--replace-existing to replace such files"
            )
        writers = listing.writers(name, current)
        if not writers:
            raise SidecarError(
                "changed since dtindex wrote it, so it is the user's now; move it away, or "
                "pass --replace-existing to replace such files"
            )
        if self.writer in writers or OLDER in writers:
            return
        other = min(writers)
        noun = NOUNS.get(other.fmt, f"a {other.fmt.decode('ascii')} file")
        raise SidecarError(
            f"dtindex wrote it as {noun}{_clash(self.writer, other)} (or pass "
            "--replace-existing to replace it)"
        )

    def _list(self, folder: bytes, name: bytes, digest: bytes, durable: bool) -> None:
        """Append `name`'s line (before its file is renamed into place)."""
        listing = self._listing(folder)
        escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
        line = b"\t".join((digest, *self.writer, escaped)) + b"\n"
        path = os.path.join(folder or b".", MANIFEST)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, (b"" if listing.ends_a_line else b"\n") + line)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        listing.ends_a_line = True
        listing.add(name, digest, self.writer)
        self._touched.add(folder)

    def _listing(self, folder: bytes) -> Listing:
        if folder not in self._listings:
            self._listings[folder] = _read(os.path.join(folder or b".", MANIFEST))
        return self._listings[folder]


def _clash(writer: Writer, other: Writer) -> str:
    """Why a file `other` wrote is not `writer`'s to replace, and the way out."""
    if other.fmt == writer.fmt:  # a beside export and an --out mirror inside a root
        places = {BESIDE: "beside the pictures", OUT: "under --out DIR"}
        where = f" {places[other.place]}, and this export is {places[writer.place]}"
        return f"{where}: export the mirror under another --out DIR"
    where = (
        "beside these pictures share that name; export one of them with --out DIR"
        if writer.place == BESIDE
        else "under this folder share that name; export them under different --out DIRs"
    )
    return f": captions and Hydrus sidecars {where}"


def _read(path: bytes) -> Listing:
    listing = Listing()
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError:
        return listing
    listing.ends_a_line = not text or text.endswith(b"\n")
    for line in text.split(b"\n"):
        hashed = _LINE.fullmatch(line)
        if hashed:
            name = re.sub(rb"\\(.)", _unescape, hashed[4])
            listing.add(name, hashed[1], Writer(hashed[2] or b"", hashed[3] or b""))
        elif line:
            listing.bare.add(line)
    return listing


def _unescape(escape: re.Match[bytes]) -> bytes:
    return b"\n" if escape[1] == b"n" else escape[1]


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()
