"""What a decoder process does with a file: look at it, or decode it into batch slots.

Everything per file and per pixel happens here, in the decoder processes, so the main
process handles only small records: a scan sends a path to `look` (read once, checked to
have held still, hashed with xxh3-128 and SHA-1, its size read from the header), decides
in bulk which models still need the content, then sends the path to `decode_into`, which
reads it again (from the page cache), checks it is still the content looked at, decodes
once and writes each model's final tensor into the slot the main process assigned.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence

import numpy as np
import xxhash
from numpy.typing import NDArray
from PIL import Image

from indexer.errors import DecodeError, os_error_kind
from indexer.imaging.codecs import orientation
from indexer.imaging.messages import Looked, Skipped, Target
from indexer.imaging.plugins import ensure_decoder
from indexer.imaging.prepare import decode, fill, fit, fitted_size
from indexer.imaging.slots import SlotAddress, SlotWriter


class Unstable(Exception):
    """The file changed while it was read."""


def read_stable(path: bytes) -> tuple[bytes, os.stat_result]:
    with open(path, "rb") as handle:
        before = os.fstat(handle.fileno())
        data = handle.read()
        after = os.fstat(handle.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(
        data
    ) != after.st_size:
        raise Unstable
    return data, after


def displayed_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as shown (EXIF rotation applied), from the header alone."""
    try:
        ensure_decoder(data)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if orientation(image) in (5, 6, 7, 8):
                width, height = height, width
            return width, height
    except Exception:  # not a picture, or a header Pillow cannot parse: decoding will say
        return None


def look(path: bytes) -> Looked | Skipped:
    """Read and hash a file; an unreadable one raises DecodeError with its kind."""
    try:
        data, stat = read_stable(path)
    except FileNotFoundError:
        return Skipped("vanished", vanished=True)
    except Unstable:
        return Skipped("changed while being read")
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror or exc}", os_error_kind(exc)) from None
    size = displayed_size(data)
    return Looked(
        xxhash.xxh3_128_hexdigest(data),
        hashlib.sha1(data).hexdigest(),
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ino,
        stat.st_dev,
        stat.st_ctime_ns,
        *(size or (None, None)),
    )


def prepare_targets(
    data: bytes, targets: Sequence[Target], max_pixels: int
) -> tuple[list[NDArray[np.uint8]], tuple[int, int]]:
    """Decode once, JPEGs DCT-scaled to what every target still needs, and fit for each."""

    def cover(width: int, height: int) -> tuple[int, int]:
        needs = [_need(t, (width, height)) for t in targets]
        return max(w for w, _ in needs), max(h for _, h in needs)

    image, full = decode(data, max_pixels, cover)
    return [fit(image, t.spec, t.height, t.width, full) for t in targets], full


def _need(target: Target, full: tuple[int, int]) -> tuple[int, int]:
    """What a decode must cover for `target`: the scaled size itself for the fast
    preparation; twice the input's longer side, both ways, for lanczos (as before)."""
    if target.spec.resize == "bilinear":
        return fitted_size(target.spec, target.height, target.width, full)
    side = 2 * max(target.height, target.width)
    return side, side


def read_again(path: bytes, expect: str | None) -> bytes | Skipped:
    """The file's bytes for decoding; `expect`: the xxh3-128 it must still have."""
    data = read_decided(path, expect is not None)
    return data if isinstance(data, Skipped) else unchanged(data, expect)


def read_decided(path: bytes, decided: bool) -> bytes | Skipped:
    """The file's bytes, unchecked; one that went away after a scan decided on it is
    skipped (the next scan looks), any other that cannot be read raises DecodeError.
    A `scan --ray --ship-files` driver reads with this and leaves the check to the
    worker, so each shipped file is hashed once."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        if decided:
            return Skipped("vanished", vanished=True)
        raise DecodeError("cannot read: No such file or directory") from None
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror or exc}", os_error_kind(exc)) from None


def unchanged(data: bytes, expect: str | None) -> bytes | Skipped:
    """`data` when it is still the content decided on (xxh3-128 `expect`, if any)."""
    if expect is not None and xxhash.xxh3_128_hexdigest(data) != expect:
        return Skipped("changed since it was read")
    return data


def decode_into(
    data: bytes,
    targets: Sequence[tuple[Target, SlotAddress]],
    writer: SlotWriter,
    max_pixels: int,
) -> tuple[int, int]:
    """Decode once and write each model's final tensor into its slot; the full size."""
    pictures, full = prepare_targets(data, [target for target, _ in targets], max_pixels)
    for picture, (target, address) in zip(pictures, targets, strict=True):
        fill(writer.slot(address), picture, target.spec)
    return full
