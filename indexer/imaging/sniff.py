"""Which files are pictures: by name where the name says, by the first bytes where not.

The `gallery` program decides by content, so a picture saved without an extension (or
with one nobody registered) is a picture to it, and dtindex indexes it too. The name is
asked first: a configured picture extension (`[scan] extensions`, any case) is a
picture; another picture extension left out of that list, or a known non-picture one
(`.txt`, `.json`, `.xmp`, videos, archives, partial downloads, ...), is never opened.
Only the rest (no extension, an unknown one) is sniffed: 32 bytes are read and compared
with the signatures of the formats the decoders read, and such a file is a picture when
its format's extensions are among the configured ones.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from indexer.config import DEFAULT_EXTENSIONS

HEAD = 32  # bytes read to tell a format
# A format's extensions: sniffed pictures count where one of them is configured.
FORMATS = {
    "jpeg": ("jpg", "jpeg", "jpe"),
    "png": ("png",),
    "gif": ("gif",),
    "webp": ("webp",),
    "bmp": ("bmp",),
    "tiff": ("tif", "tiff"),
    "avif": ("avif",),
    "heif": ("heic", "heif"),
    "jxl": ("jxl",),
}
_NOT_PICTURES = """txt text md rst nfo log json jsonl xml xmp yaml yml toml ini cfg conf csv
tsv html htm css js py sh bat pdf doc docx odt rtf xls xlsx zip rar 7z tar gz bz2 xz zst
mp4 m4v mkv webm avi mov wmv flv mpg mpeg mp3 wav flac ogg opus m4a aac db sqlite
sqlite-wal sqlite-shm lock ds_store lnk url torrent part crdownload download partial tmp
swp bak md5 sha1 sfv srt ass vtt exe dll so dylib iso"""
NOT_PICTURES = frozenset(_NOT_PICTURES.split())
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_BMP_HEADERS = {12, 40, 52, 56, 64, 108, 124}  # the sizes of BMP's known DIB headers


def format_of(head: bytes) -> str | None:
    """The picture format whose signature `head` (a file's first bytes) starts with."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADERS:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "avif" if brand in (b"avif", b"avis") else "heif" if brand in _HEIF_BRANDS else None
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    return None


class Pictures:
    """The picture test for one set of configured extensions."""

    def __init__(self, extensions: Collection[str]) -> None:
        self.chosen = {e.lower().encode() for e in extensions}
        other_pictures = {e.encode() for e in DEFAULT_EXTENSIONS} - self.chosen
        self.never = other_pictures | {e.encode() for e in NOT_PICTURES}
        self.formats = {
            f for f, exts in FORMATS.items() if self.chosen & {e.encode() for e in exts}
        }

    def by_name(self, name: bytes) -> bool | None:
        """A file's name (not its path) says: True, a picture; False, never one; None:
        it does not say (sniff it)."""
        _, dot, ext = name.rpartition(b".")
        if not dot:
            return None
        ext = ext.lower()
        if ext in self.chosen:
            return True
        return False if ext in self.never else None

    def by_content(self, path: bytes) -> bool:
        """Whether the file starts as a picture of a configured format (unreadable: no)."""
        head = _head(path)
        return head is not None and format_of(head) in self.formats

    def might_be(self, path: bytes) -> bool:
        """As a call, but a file that cannot be read, or too short yet to tell (being
        written), counts as a picture: for a rule that must err towards pictures (the
        names an export keeps beside them, `export.leftovers`)."""
        named = self.by_name(os.path.basename(path))
        if named is not None:
            return named
        head = _head(path)
        return head is None or len(head) < HEAD or format_of(head) in self.formats

    def __call__(self, path: bytes) -> bool:
        """By name, else by content: a file not yet known to be a picture."""
        named = self.by_name(os.path.basename(path))
        return named if named is not None else self.by_content(path)


def _head(path: bytes) -> bytes | None:
    """The file's first `HEAD` bytes, or None where it cannot be read."""
    try:  # non-blocking: a FIFO or a device answers at once
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.read(descriptor, HEAD)
    except OSError:
        return None
    finally:
        os.close(descriptor)
