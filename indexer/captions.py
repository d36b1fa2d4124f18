"""Caption files for training tools: one `.txt` per picture, tags by descending score.

`stem.txt` beside the picture, or mirrored under a folder. Pictures that share a stem in
one folder (`1.png` and `1.jpg`) are named by their full file name (`1.png.txt`) so that
neither overwrites the other's caption.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from .selection import Scored, caption_text


def caption_line(tags: Iterable[Scored]) -> str:
    ordered = sorted(tags, key=lambda t: -t.score)
    return ", ".join(caption_text(t.tag) for t in ordered)


class CaptionNamer:
    """Where each picture's caption goes, knowing every picture the index holds."""

    def __init__(self, all_paths: Iterable[bytes], out: bytes | None) -> None:
        self.out = out
        self._stems = Counter(os.path.splitext(p)[0] for p in all_paths)

    def target(self, path: bytes, root: bytes) -> bytes:
        stem = os.path.splitext(path)[0]
        base = path if self._stems[stem] > 1 else stem
        if self.out is None:
            return base + b".txt"
        return os.path.join(self.out, os.path.relpath(base, root) + b".txt")


def write_caption(target: bytes, text: str) -> None:
    os.makedirs(os.path.dirname(target) or b".", exist_ok=True)
    temporary = target + b".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(temporary, target)  # a reader never sees half a caption
