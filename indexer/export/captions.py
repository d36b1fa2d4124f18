"""Caption files for training tools: one `.txt` per picture, tags by descending score.

`stem.txt` beside the picture, or mirrored under a folder. Pictures that share a stem in
one folder (`1.png` and `1.jpg`) are named by their full file name (`1.png.txt`) so that
neither overwrites the other's caption.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from indexer.export.thresholds import Scored, caption_text


def caption_line(tags: Iterable[Scored]) -> str:
    ordered = sorted(tags, key=lambda t: -t.score)
    return ", ".join(caption_text(t.tag) for t in ordered)


def root_labels(roots: Iterable[bytes]) -> dict[bytes, bytes]:
    """A folder name per root under `--out`: its last path components, as many as it
    takes to tell it from the others (`/a/g` and `/b/g` become `a/g` and `b/g`)."""
    parts = {root: root.rstrip(b"/").split(b"/") for root in set(roots)}
    depth = 1
    while True:
        labels = {root: b"/".join(p[-depth:]).lstrip(b"/") for root, p in parts.items()}
        if len(set(labels.values())) == len(labels) or depth > max(map(len, parts.values())):
            return labels
        depth += 1


class CaptionNamer:
    """Where each picture's caption goes, knowing every picture and root the index holds.

    Under `--out`, one root's pictures mirror their paths below it; with several roots
    each gets a folder of its own (`root_labels`), so two roots holding the same
    relative path never write one caption file.
    """

    def __init__(
        self, all_paths: Iterable[bytes], out: bytes | None, roots: Iterable[bytes] = ()
    ) -> None:
        self.out = out
        self._stems = Counter(os.path.splitext(p)[0] for p in all_paths)
        labels = root_labels(roots)
        self._labels = labels if len(labels) > 1 else {}

    def target(self, path: bytes, root: bytes) -> bytes:
        stem = os.path.splitext(path)[0]
        base = path if self._stems[stem] > 1 else stem
        if self.out is None:
            return base + b".txt"
        below = os.path.relpath(base, root) + b".txt"
        label = self._labels.get(root)
        return os.path.join(self.out, label, below) if label else os.path.join(self.out, below)


def write_caption(target: bytes, text: str) -> None:
    os.makedirs(os.path.dirname(target) or b".", exist_ok=True)
    temporary = target + b".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(temporary, target)  # a reader never sees half a caption
