"""Which paths lie under a folder: the one rule for the index's path ranges (a range on
the unique path index, not LIKE) and for prefix tests in Python. `/a/g2` is not under
`/a/g`; `0` is the byte after `/`; the root folder `/` holds every absolute path."""

from __future__ import annotations


def bounds(folder: bytes) -> tuple[bytes, bytes]:
    """Paths under `folder` are those >= low and < high."""
    low = folder.rstrip(b"/") + b"/"
    return low, low[:-1] + b"0"


def holds(folder: bytes, path: bytes) -> bool:
    """Whether `path` lies strictly inside `folder`."""
    return path.startswith(bounds(folder)[0])
